"""Real photographic assets for the ``photo`` style, split into disjoint train/test pools (no bpy).

No photo data set can be downloaded here, so the stand-in target domain draws on the real
photographs that ship *inside installed packages*:

* HDRIs (environment light and, for some views, the visible background): Blender's studio-light
  worlds in the ``bpy`` wheel (CC0, Poly Haven 1K equirectangular EXRs) and the Stinson Beach
  dome light in bpy's bundled USD resources.
* Background photos: scikit-image's sample photographs (``skimage/data``) and matplotlib's
  ``grace_hopper.jpg``. Random crops, scales, flips and tints make many distinct backgrounds.

Every asset has a fixed pool in the tables below (not a hash of a file list, so installing or
removing one package never moves another asset between pools). Assets that are one photograph
twice (the motorcycle stereo pair) share a pool. Shapes whose
:func:`synth_render.shards.asset_split` is ``"test"`` only ever see ``"test"`` assets, so
target-test images never share a background or light with target-train images. Missing files
are skipped; both pools always hold at least one HDRI from the ``bpy`` wheel, a hard
dependency. Procedural floors and materials (Blender texture nodes) need no files.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

SPLITS = ("train", "test")


@dataclass(frozen=True)
class Asset:
    """One photographic file inside an installed package."""

    name: str
    package: str  # top-level import name of the package that ships it
    pattern: str  # glob relative to the package directory (``*`` absorbs version folders)
    split: str  # "train" or "test"
    surface: bool = False  # a close-up of a ground surface: also usable as a floor texture
    weight: float = 1.0  # relative frequency as a background


_WORLD = "*/datafiles/studiolights/world/"

# Outdoor, indoor and studio lighting in both pools; night and studio (unusual light) train only.
HDRIS = (
    Asset("city", "bpy", _WORLD + "city.exr", "train"),
    Asset("forest", "bpy", _WORLD + "forest.exr", "train"),
    Asset("interior", "bpy", _WORLD + "interior.exr", "train"),
    Asset("night", "bpy", _WORLD + "night.exr", "train"),
    Asset("studio", "bpy", _WORLD + "studio.exr", "train"),
    Asset("sunset", "bpy", _WORLD + "sunset.exr", "train"),
    Asset("courtyard", "bpy", _WORLD + "courtyard.exr", "test"),
    Asset("sunrise", "bpy", _WORLD + "sunrise.exr", "test"),
    Asset("stinson_beach", "bpy", "lib/usd/hdx/resources/textures/StinsonBeach.hdr", "test"),
)

# Only real photographs (no renders, diagrams, microscopy or astronomy). Portraits are drawn
# half as often: an object in front of a face is an unusual photo.
PHOTOS = (
    Asset("astronaut", "skimage", "data/astronaut.png", "train", weight=0.5),
    Asset("brick", "skimage", "data/brick.png", "train", surface=True),
    Asset("camera", "skimage", "data/camera.png", "train", weight=0.5),
    Asset("coffee", "skimage", "data/coffee.png", "train"),
    Asset("grass", "skimage", "data/grass.png", "train", surface=True),
    Asset("motorcycle_left", "skimage", "data/motorcycle_left.png", "train"),
    Asset("motorcycle_right", "skimage", "data/motorcycle_right.png", "train"),
    Asset("grace_hopper", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "train",
          weight=0.5),
    Asset("coins", "skimage", "data/coins.png", "train"),
    Asset("chelsea", "skimage", "data/chelsea.png", "test"),
    Asset("gravel", "skimage", "data/gravel.png", "test", surface=True),
    Asset("rocket", "skimage", "data/rocket.jpg", "test"),
)


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"asset split must be one of {SPLITS}, got {split!r}")


@functools.cache
def _package_dir(package: str) -> Path | None:
    """Directory of an installed package, found without importing it (bpy imports are slow)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _resolve(asset: Asset) -> Path | None:
    root = _package_dir(asset.package)
    if root is None:
        return None
    hits = sorted(root.glob(asset.pattern))
    return hits[-1] if hits else None


def _present(assets: tuple[Asset, ...], split: str) -> list[tuple[Asset, Path]]:
    _check_split(split)
    found = ((a, _resolve(a)) for a in assets if a.split == split)
    return [(a, p) for a, p in found if p is not None]


def _pool(assets: tuple[Asset, ...], split: str) -> list[Path]:
    return [p for _, p in _present(assets, split)]


def hdri_pool(split: str) -> list[Path]:
    """Equirectangular HDRIs (``.exr``/``.hdr``) of one pool, in table order."""
    return _pool(HDRIS, split)


def background_pool(split: str) -> list[Path]:
    """Background photographs of one pool, in table order (empty if no package ships any)."""
    return _pool(PHOTOS, split)


def floor_texture_pool(split: str) -> list[Path]:
    """Photos of ground surfaces (brick, grass, gravel) of one pool, for textured floors."""
    return [p for a, p in _present(PHOTOS, split) if a.surface]


def _pick_photo(rng: np.random.Generator, split: str) -> Path | None:
    present = _present(PHOTOS, split)
    if not present:
        return None
    weights = np.array([a.weight for a, _ in present])
    return present[int(rng.choice(len(present), p=weights / weights.sum()))][1]


@functools.lru_cache(maxsize=32)
def _load_photo(path: Path) -> np.ndarray:
    """Decode once per process: ``(H, W, 3) uint8``, or ``(H, W, 1)`` for grey photos."""
    with Image.open(path) as im:
        if im.mode in ("L", "I", "I;16"):
            return np.asarray(im.convert("L"))[..., None]
        return np.asarray(im.convert("RGB"))


def _size_hw(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def sample_background(rng: np.random.Generator, split: str,
                      size: int | tuple[int, int]) -> np.ndarray:
    """A random crop of a random photo of ``split``'s pool: ``(H, W, 3) uint8``.

    The crop covers 25–100 % of the photo's short side (so both wide scenes and close-up
    surfaces appear), is flipped left-right half of the time and resized to ``size``. Grey
    photos get a random colour tint so they read as coloured surfaces (brick, gravel, grass).
    Without any photo in the pool a smooth random two-tone gradient stands in.
    """
    h, w = _size_hw(size)
    path = _pick_photo(rng, split)
    if path is None:
        return _gradient_background(rng, h, w)
    photo = _load_photo(path)
    crop = _random_crop(rng, photo, h / w)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    pixels = np.ascontiguousarray(crop[..., 0] if crop.shape[-1] == 1 else crop)
    img = Image.fromarray(pixels).resize((w, h), Image.Resampling.BILINEAR)
    img = np.asarray(img, dtype=np.float32)
    if img.ndim == 2:
        tint = rng.uniform(0.55, 1.0, size=3)
        img = img[..., None] * (tint / tint.max())
    return np.clip(img, 0, 255).astype(np.uint8)


def _random_crop(rng: np.random.Generator, photo: np.ndarray, aspect: float) -> np.ndarray:
    """A crop of aspect ``aspect`` (height / width) and random scale and position."""
    ph, pw = photo.shape[:2]
    side = rng.uniform(0.25, 1.0)
    ch = max(8, int(min(ph, pw * aspect) * side))
    cw = max(8, int(ch / aspect))
    y0 = int(rng.integers(0, ph - ch + 1))
    x0 = int(rng.integers(0, pw - cw + 1))
    return photo[y0:y0 + ch, x0:x0 + cw]


def _gradient_background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Fallback: a vertical blend between two random colours (wall above, floor below)."""
    top, bottom = rng.uniform(40, 230, size=(2, 3))
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    img = top * (1 - t) + bottom * t
    return np.broadcast_to(img, (h, w, 3)).astype(np.uint8)
