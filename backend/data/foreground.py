"""Images and exact masks for the foreground model, labelled for free by the data engine.

Two sources of objects (an :class:`ObjectView` each):

- photo-style renders and their object masks (``rendering/masks/NN.png``, the object pass):
  the photo's own background, shadow and camera effects, the object at the R2N2 framing;
- synthetic renders (RGBA on a transparent background: the alpha is the mask).

:func:`compose` turns one into a training image at a random framing, so the model does not
learn "the object is centred at two thirds of the frame":

- *re-framed in context* (photo renders only): a random square window of the photo, from the
  whole frame down to 40 % of it, so the object fills, overflows or is cut off by the border,
  with the photo's own background around it;
- *placed*: the object cut out through its mask, scaled so that its longer side spans 20-100 %
  of the frame (sometimes up to 140 %: overflowing), placed anywhere with its centre inside the
  frame (cut off at the border when near it), then laid over a background photo by the photo
  style's own compositing and camera model (:func:`synth_render.render.photo_post.apply`:
  tint, white balance, blur, noise, JPEG), the mask through the same geometry;
- *empty*: a background photo alone (the model must be able to say "nothing here").

Backgrounds come from the asset split given (``train`` for training; the ``test`` pool is
held out for evaluation, as the photo style does). A :class:`SampleMix` adds two kinds:
with ``procedural`` > 0 that share of the placed and empty samples' backgrounds are
procedural textures instead (:mod:`backend.data.textures`: the training pool's nine photos
are too few kinds of background); with ``distractors`` > 0 that share of the placed objects
are placed whole in the middle of the frame with a second object behind them, cut off by a
border and labelled background (a photo's subject is the central whole thing; without them
the model takes a salient thing at the border, a tower or a rocket, for the object too).
Torch-free: numpy and Pillow.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from backend.data.textures import procedural_background
from synth_render import r2n2
from synth_render.render import photo_post
from synth_render.render.backgrounds import sample_background

log = logging.getLogger(__name__)

MASK_THRESHOLD = 128  # coverage at or above this is the object
IN_CONTEXT_P = 0.3  # share of photo-render samples re-framed in their own photo
EMPTY_P = 0.05  # share of samples with no object
OVERFLOW_P = 0.1  # share of placed objects larger than the frame
SCALE_RANGE = (0.2, 1.0)  # the placed object's longer side, in frames
OVERFLOW_RANGE = (1.0, 1.4)
WINDOW_RANGE = (0.4, 1.0)  # in-context windows, in frames of the photo
SUBJECT_SCALE_RANGE = (0.25, 0.7)  # a placed object with a distractor: whole, in the middle
DISTRACTOR_SCALE_RANGE = (0.3, 1.2)
DISTRACTOR_BAND = (-0.1, 0.15)  # the distractor's centre from its border, in frames (- outside)
ASPECT_RANGE = (0.56, 1.0)  # shorter over longer side of the photos reaspect() imitates (9:16)


@dataclass(frozen=True)
class ObjectView:
    """One view of an object: an image file and its mask (``mask=None``: the image's alpha)."""

    image: Path
    mask: Path | None = None

    def load(self) -> tuple[np.ndarray, np.ndarray, bool]:
        """``(rgb (H, W, 3) uint8, coverage (H, W) uint8, in_context)``; ``in_context`` is
        True when the rgb holds a whole photo (its background included)."""
        with Image.open(self.image) as im:
            if self.mask is None:
                rgba = np.asarray(im.convert("RGBA"))
                return rgba[..., :3], rgba[..., 3], False
            rgb = np.asarray(im.convert("RGB"))
        with Image.open(self.mask) as im:
            mask = np.asarray(im.convert("L"))
        if mask.shape != rgb.shape[:2]:
            raise ValueError(f"{self.mask}: mask {mask.shape} does not match image "
                             f"{rgb.shape[:2]}")
        return rgb, mask, True


def tree_views(render_root: str | Path, keys: Iterable[str], masks: bool) -> list[ObjectView]:
    """The complete views of ``keys`` under an R2N2-layout render tree; with ``masks``, only
    views whose object mask exists (photo style; a tree rendered before the object pass has
    none, and is reported)."""
    views, missing = [], 0
    for key in keys:
        synset, _, model_id = key.partition("/")
        render_dir = r2n2.rendering_dir(render_root, synset, model_id)
        if not r2n2.is_complete(render_dir):
            continue
        for i, name in enumerate(r2n2.read_renderings(render_dir)):
            mask = r2n2.mask_path(render_dir, i) if masks else None
            if mask is not None and not mask.is_file():
                missing += 1
                continue
            views.append(ObjectView(render_dir / name, mask))
    if missing:
        log.warning("%s: %d views have no object mask (rendered before the object pass; "
                    "render the tree again to get them)", render_root, missing)
    return views


def mask_box(mask: np.ndarray, threshold: float = MASK_THRESHOLD
             ) -> tuple[int, int, int, int] | None:
    """The box ``(x0, y0, x1, y1)`` of the pixels at or above ``threshold`` (None: none)."""
    on = mask >= threshold
    ys, xs = np.flatnonzero(on.any(1)), np.flatnonzero(on.any(0))
    if not len(ys):
        return None
    return int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1


@dataclass(frozen=True)
class SampleMix:
    """What a training sample may hold beyond one object over a background photo. Each share
    is tested by a draw only when it is above 0, so the default keeps every earlier sample."""

    procedural: float = 0.0  # share of placed and empty samples over procedural textures
    distractors: float = 0.0  # share of placed objects with a second one behind, as background


PLAIN = SampleMix()  # one object over a background photo: the samples of the first models


def compose(view: ObjectView | None, rng: np.random.Generator, size: int = 128,
            split: str = "train", mix: SampleMix = PLAIN,
            distractor: ObjectView | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One image at a random framing and its mask: ``(size, size, 3) uint8`` and
    ``(size, size) float32`` coverage in [0, 1] (see the module docstring). ``view=None``
    or a draw below :data:`EMPTY_P` gives a background alone. A placed object with a
    ``distractor`` is placed whole in the middle of the frame, the distractor behind it, cut
    off by a border and not in the mask (:func:`_placed`)."""
    if view is None or rng.random() < EMPTY_P:
        return _empty(rng, size, split, mix.procedural)
    rgb, mask, in_context = view.load()
    box = mask_box(mask)
    if box is None:
        return _empty(rng, size, split, mix.procedural)
    if in_context and rng.random() < IN_CONTEXT_P:
        return _window(rgb, mask, rng, size)
    return _placed(rgb, mask, box, rng, size, split, mix.procedural,
                   None if distractor is None else distractor.load()[:2])


def draw(photo: list[ObjectView], synthetic: list[ObjectView], photo_share: float,
         rng: np.random.Generator, size: int = 128, split: str = "train",
         mix: SampleMix = PLAIN) -> tuple[np.ndarray, np.ndarray]:
    """One training image: a view drawn from ``photo`` (with probability ``photo_share``) or
    ``synthetic``, with a share ``mix.distractors`` a second one as its distractor, then
    :func:`compose`."""
    view = _pick(photo, synthetic, photo_share, rng)
    distractor = None
    if mix.distractors > 0 and rng.random() < mix.distractors:
        distractor = _pick(photo, synthetic, photo_share, rng)
    return compose(view, rng, size, split, mix, distractor)


def _pick(photo: list[ObjectView], synthetic: list[ObjectView], photo_share: float,
          rng: np.random.Generator) -> ObjectView:
    pool = photo if rng.random() < photo_share else synthetic
    return pool[int(rng.integers(len(pool)))]


def sample(photo: list[ObjectView], synthetic: list[ObjectView], index: int, seed: int,
           photo_share: float, size: int = 128, split: str = "train",
           mix: SampleMix = PLAIN) -> tuple[np.ndarray, np.ndarray]:
    """Training image ``index`` of the run seeded ``seed``: :func:`draw` with a generator of
    those two alone, so any process can make any sample and a cache of them can be resumed."""
    return draw(photo, synthetic, photo_share, np.random.default_rng([seed, 3, index]), size,
                split, mix)


def reaspect(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator,
             shortest: float = ASPECT_RANGE[0]) -> tuple[np.ndarray, np.ndarray]:
    """The square sample as a photo of another aspect ratio is seen by the segmenter: one side
    cropped to ``shortest``-100 % of it, then padded back to a square by edge replication
    (as :func:`backend.core.preprocess._mask_view` pads photos), the mask with background."""
    size = image.shape[0]
    keep = int(round(size * rng.uniform(shortest, 1.0)))
    if keep >= size:
        return image, mask
    start = int(rng.integers(0, size - keep + 1))
    before = (size - keep) // 2
    pad = ((before, size - keep - before), (0, 0))
    if rng.random() < 0.5:  # a landscape photo: rows cropped
        img, m = image[start:start + keep], mask[start:start + keep]
    else:  # portrait: columns
        img, m = image[:, start:start + keep], mask[:, start:start + keep]
        pad = pad[::-1]
    return (np.pad(img, (*pad, (0, 0)), mode="edge"),
            np.pad(m, pad, mode="constant"))


def _empty(rng: np.random.Generator, size: int, split: str, procedural: float
           ) -> tuple[np.ndarray, np.ndarray]:
    rgba = np.zeros((size, size, 4), np.uint8)
    return _photographed(rgba, np.zeros((size, size), np.uint8), rng, split, procedural)


def _window(rgb: np.ndarray, mask: np.ndarray, rng: np.random.Generator,
            size: int) -> tuple[np.ndarray, np.ndarray]:
    """A random square window of a whole photo, resized to ``size``."""
    h, w = mask.shape
    side = max(8, int(min(h, w) * rng.uniform(*WINDOW_RANGE)))
    x0, y0 = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
    box = (x0, y0, x0 + side, y0 + side)
    flip = rng.random() < 0.5
    out = []
    for arr, resample in ((rgb, Image.Resampling.BICUBIC), (mask, Image.Resampling.BILINEAR)):
        img = Image.fromarray(arr).crop(box).resize((size, size), resample)
        a = np.asarray(img)
        out.append(a[:, ::-1] if flip else a)
    return np.ascontiguousarray(out[0]), out[1].astype(np.float32) / 255.0


def _placed(rgb: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int],
            rng: np.random.Generator, size: int, split: str, procedural: float,
            distractor: tuple[np.ndarray, np.ndarray] | None = None
            ) -> tuple[np.ndarray, np.ndarray]:
    """The object cut out through its mask, scaled and placed at random, photographed. With a
    ``distractor`` (rgb, coverage), the object is placed whole, towards the middle of the
    frame, and the distractor behind it, near a border (:func:`_distractor`): in a real photo
    the subject is the central whole thing, and what the border cuts is background."""
    rgba = np.zeros((size, size, 4), np.uint8)  # what lies behind the object
    if distractor is None:
        rng_range = OVERFLOW_RANGE if rng.random() < OVERFLOW_P else SCALE_RANGE
        span = rng.uniform(*rng_range)  # the object's longer side, in frames
        centre = rng.uniform(0.05, 0.95, 2)  # anywhere inside the frame
    else:
        span = rng.uniform(*SUBJECT_SCALE_RANGE)  # whole, its centre in the middle
        centre = 0.5 + rng.uniform(-0.5, 0.5, 2) * (0.5 - span / 2)  # whole after roll, zoom
        _distractor(rgba, *distractor, rng)
    obj = np.zeros_like(rgba)
    _paste(obj, _cut_out(rgb, mask, box, span * size, rng), centre * size)
    return _photographed(_over(obj, rgba), obj[..., 3].copy(), rng, split, procedural)


def _distractor(rgba: np.ndarray, rgb: np.ndarray, mask: np.ndarray,
                rng: np.random.Generator) -> None:
    """Paste a second object into ``rgba``, its centre within :data:`DISTRACTOR_BAND` of a
    random border, so that the border cuts most of them."""
    box = mask_box(mask)
    if box is None:
        return
    size = rgba.shape[0]
    along, across = rng.uniform(0.0, 1.0), rng.uniform(*DISTRACTOR_BAND)
    side = int(rng.integers(4))  # left, right, top, bottom
    across = across if side in (0, 2) else 1.0 - across
    centre = np.array([across, along] if side < 2 else [along, across])
    cut = _cut_out(rgb, mask, box, rng.uniform(*DISTRACTOR_SCALE_RANGE) * size, rng)
    _paste(rgba, cut, centre * size)


def _cut_out(rgb: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int], span: float,
             rng: np.random.Generator) -> np.ndarray:
    """The object inside ``box`` as RGBA (its mask the alpha), flipped at random and resized
    so that its longer side spans ``span`` pixels."""
    x0, y0, x1, y1 = box
    k = span / max(x1 - x0, y1 - y0)
    ow, oh = max(1, round((x1 - x0) * k)), max(1, round((y1 - y0) * k))
    cut = np.dstack([rgb, mask])[y0:y1, x0:x1]
    if rng.random() < 0.5:
        cut = cut[:, ::-1]
    return np.asarray(Image.fromarray(np.ascontiguousarray(cut), "RGBA").resize(
        (ow, oh), Image.Resampling.BICUBIC))


def _paste(rgba: np.ndarray, cut: np.ndarray, centre: np.ndarray) -> None:
    """Write ``cut`` into the empty ``rgba`` centred at ``centre`` (x, y pixels), cut off by
    the frame's border."""
    size = rgba.shape[0]
    oh, ow = cut.shape[:2]
    px, py = round(centre[0] - ow / 2), round(centre[1] - oh / 2)
    sx0, sy0 = max(0, -px), max(0, -py)  # the part of the cut-out inside the frame
    sx1, sy1 = min(ow, size - px), min(oh, size - py)
    if sx1 > sx0 and sy1 > sy0:
        rgba[py + sy0:py + sy1, px + sx0:px + sx1] = cut[sy0:sy1, sx0:sx1]


def _over(top: np.ndarray, under: np.ndarray) -> np.ndarray:
    """``top`` over ``under`` (straight-alpha RGBA uint8); ``top`` itself when ``under`` is
    empty (no rounding: the samples without a distractor stay as they were)."""
    if not under[..., 3].any():
        return top
    a, b = top[..., 3:] / 255.0, under[..., 3:] / 255.0
    alpha = a + b * (1 - a)
    rgb = (top[..., :3] * a + under[..., :3] * b * (1 - a)) / np.maximum(alpha, 1e-6)
    return np.clip(np.dstack([rgb, alpha * 255]) + 0.5, 0, 255).astype(np.uint8)


def _photographed(rgba: np.ndarray, mask: np.ndarray, rng: np.random.Generator,
                  split: str, procedural: float) -> tuple[np.ndarray, np.ndarray]:
    """The photo style's compositing and camera model on a placed object (and its mask)."""
    params = photo_post.draw_params(rng)
    # the share test draws only when asked for, so procedural=0 keeps every earlier sample
    if procedural > 0 and rng.random() < procedural:
        background = procedural_background(rng, rgba.shape[:2])
    else:
        background = sample_background(rng, split, rgba.shape[:2])
    photo = photo_post.apply(rgba, background, params, np.random.default_rng(rng.integers(2**63)))
    return photo, photo_post.mask_geometry(mask, params).astype(np.float32) / 255.0
