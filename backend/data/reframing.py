"""Re-framed test sets: the held-out photo-style renders framed as users frame photos.

Built honestly, so that finding the object is not free: the object is composited through its
exact mask (the object pass, ``rendering/masks/NN.png``) into a background photo of the
held-out pool, at the render's native resolution (no resizing: a shrunk copy would only
measure blur), so there is no pasted rectangle for a detector to find. The whole frame then
goes through one JPEG round trip, as a camera saves it. Variants (:data:`VARIANTS`), with
``L`` the longer side of the object's box and ``F`` the frame's side:

- ``composited``: the object where it was, ``F`` = the render's side: the standard framing,
  composited (the control that separates compositing from framing);
- ``fill95``: ``F = L / 0.95``, centred: the object fills the frame (a close-up);
- ``small35``: ``F = L / 0.35``, centred: a wide shot;
- ``offcentre15``: ``F`` = the render's side, the object moved by 15 % of ``F`` in a random
  direction (it may be cut off by the border).

:func:`alpha_object_tree` gives cut-out renders (the synthetic style, whose alpha is the
object mask) the same layout, so source-validation shapes make a dev set of re-framed trees
that never touches the test shapes (``benchmarks/framing_dev.py``).

The renders themselves are the baseline (the ``rendered`` row of the tables). Each variant is
an R2N2-layout tree with the source tree's index files, so ``backend eval`` scores it
against the same voxels, and the placed object masks (``rendering/masks``), so
``backend eval-foreground`` scores the foreground model on it. Deterministic from ``seed``.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from backend.data.foreground import mask_box
from synth_render import r2n2
from synth_render.render.backgrounds import sample_background

VARIANTS = ("composited", "fill95", "small35", "offcentre15")
JPEG_QUALITY = 90
ASSET_SPLIT = "test"  # the held-out backgrounds


def frame_geometry(variant: str, box: tuple[int, int, int, int], side: int,
                   rng: np.random.Generator) -> tuple[int, int, int]:
    """``(F, ox, oy)``: the frame's side and where the render's origin lands in it."""
    x0, y0, x1, y1 = box
    longer = max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    if variant == "composited":
        return side, 0, 0
    if variant in ("fill95", "small35"):
        f = max(1, round(longer / (0.95 if variant == "fill95" else 0.35)))
        return f, round(f / 2 - cx), round(f / 2 - cy)
    if variant == "offcentre15":
        angle = rng.uniform(0, 2 * math.pi)
        dx, dy = 0.15 * side * math.cos(angle), 0.15 * side * math.sin(angle)
        return side, round(dx), round(dy)
    raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")


def reframe(photo: np.ndarray, mask: np.ndarray, variant: str, rng: np.random.Generator
            ) -> tuple[np.ndarray, tuple[int, int, int, int], np.ndarray]:
    """One re-framed image ``(F, F, 3) uint8``, the object's box in it (x0, y0, x1, y1) and
    its mask there ``(F, F) uint8``."""
    box = mask_box(mask)
    if box is None:
        raise ValueError("the mask is empty")
    f, ox, oy = frame_geometry(variant, box, photo.shape[0], rng)
    canvas = sample_background(rng, ASSET_SPLIT, (f, f)).astype(np.float32)
    alpha = np.zeros((f, f, 1), np.float32)
    obj = np.zeros((f, f, 3), np.float32)
    h, w = mask.shape
    # the render's pixels [sy0, sy1) x [sx0, sx1) land at [sy0 + oy, ...) in the frame
    sx0, sy0 = max(0, -ox), max(0, -oy)
    sx1, sy1 = min(w, f - ox), min(h, f - oy)
    if sx1 > sx0 and sy1 > sy0:
        alpha[sy0 + oy:sy1 + oy, sx0 + ox:sx1 + ox, 0] = mask[sy0:sy1, sx0:sx1] / 255.0
        obj[sy0 + oy:sy1 + oy, sx0 + ox:sx1 + ox] = photo[sy0:sy1, sx0:sx1]
    out = np.clip(obj * alpha + canvas * (1 - alpha) + 0.5, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(out).save(buf, format="JPEG", quality=JPEG_QUALITY)
    with Image.open(buf) as im:
        out = np.asarray(im.convert("RGB"))
    x0, y0, x1, y1 = box
    placed = (max(0, x0 + ox), max(0, y0 + oy), min(f, x1 + ox), min(f, y1 + oy))
    return out, placed, np.clip(alpha[..., 0] * 255 + 0.5, 0, 255).astype(np.uint8)


def build_reframed_trees(renders: str | Path, keys: Iterable[str], out: str | Path,
                         views: int | None = None, seed: int = 0,
                         variants: Iterable[str] = VARIANTS) -> dict[str, Path]:
    """Write one R2N2-layout tree per variant under ``out``; models without masks are
    skipped. Returns ``{variant: tree}``; an existing complete model is not rewritten."""
    renders, out = Path(renders), Path(out)
    trees = {v: out / v for v in variants}
    for tree in trees.values():
        r2n2.claim_tree(tree, r2n2.RENDERS, source="reframed", seed=seed)
    for key in tqdm(list(keys), desc="re-framing", unit="model"):
        synset, _, model_id = key.partition("/")
        src = r2n2.rendering_dir(renders, synset, model_id)
        if not r2n2.is_complete(src):
            continue
        names = r2n2.read_renderings(src)[:views]
        cams = r2n2.read_metadata(src)[:len(names)]
        if not all(r2n2.mask_path(src, i).is_file() for i in range(len(names))):
            continue
        for v, tree in trees.items():
            dst = r2n2.rendering_dir(tree, synset, model_id)
            if r2n2.is_complete(dst, len(names)):
                continue
            dst.mkdir(parents=True, exist_ok=True)
            for i, name in enumerate(names):
                rng = np.random.default_rng([seed, VARIANTS.index(v), i, *key.encode()])
                with Image.open(src / name) as im:
                    photo = np.asarray(im.convert("RGB"))
                with Image.open(r2n2.mask_path(src, i)) as im:
                    mask = np.asarray(im.convert("L"))
                image, _, placed_mask = reframe(photo, mask, v, rng)
                Image.fromarray(image).save(dst / name)
                r2n2.mask_path(dst, i).parent.mkdir(exist_ok=True)
                Image.fromarray(placed_mask).save(r2n2.mask_path(dst, i))
            r2n2.write_index(dst, cams)
    return trees


def alpha_object_tree(renders: str | Path, keys: Iterable[str], out: str | Path,
                      views: int | None = None) -> Path:
    """``keys``' first ``views`` cut-out renders (RGBA, the synthetic style) rewritten as RGB
    PNGs with their alpha as the object mask (``rendering/masks/NN.png``), the layout
    :func:`build_reframed_trees` reads; the index files copied. Returns ``out``."""
    out = Path(out)
    for key in tqdm(list(keys), desc="cut-out objects", unit="model"):
        synset, _, model_id = key.partition("/")
        src, dst = (r2n2.rendering_dir(root, synset, model_id) for root in (renders, out))
        if not r2n2.is_complete(src):
            continue
        names = r2n2.read_renderings(src)[:views]
        if r2n2.is_complete(dst, len(names)):
            continue
        r2n2.mask_path(dst, 0).parent.mkdir(parents=True, exist_ok=True)
        for i, name in enumerate(names):
            with Image.open(src / name) as im:
                rgba = np.asarray(im.convert("RGBA"))
            Image.fromarray(rgba[..., :3]).save(dst / name)
            Image.fromarray(rgba[..., 3]).save(r2n2.mask_path(dst, i))
        r2n2.write_index(dst, r2n2.read_metadata(src)[:len(names)])
    return out
