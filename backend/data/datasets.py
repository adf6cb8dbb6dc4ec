"""Torch data sets: rendered views with voxels, unlabeled images, and Pix3D photos.

Every image goes through :func:`backend.core.preprocess.preprocess` (the one preprocessing step).
Items are plain dicts of tensors, strings and ints, so torch's default collate batches them:

- :class:`RenderVoxelDataset` (supervised pairs, R2N2 layout): ``image`` (3, S, S) float32 in
  [-1, 1], ``voxels`` (32, 32, 32) float32 in {0, 1} indexed ``[x, y, z]`` (+Y up),
  ``class_index`` (int64 scalar), ``view`` (2,) float32 ``[azimuth, elevation]`` in degrees,
  ``key`` ``"<synset>/<model_id>"``, ``view_index`` int.
- :class:`ImageOnlyDataset` (unsupervised target images): ``image`` and ``path`` only. Built
  from image files alone, it cannot reach voxels: this is how target labels stay out of
  unsupervised training.
- :class:`Pix3DDataset` (real photos for evaluation): the same keys as the paired data set.

A class index is the position of the synset in :data:`synth_render.taxonomy.ALL_SYNSETS`.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from backend.core.preprocess import (
    IMAGE_SIZE,
    OBJECT_FRACTION,
    ImageError,
    Segmenter,
    alpha_mask,
    framing_of,
    load_image,
    preprocess,
    square_box_around,
    to_rgb,
    to_uint8,
)
from synth_render import r2n2, shapenet, taxonomy, voxelize

log = logging.getLogger(__name__)

NUM_CLASSES = len(taxonomy.ALL_SYNSETS)  # 13
MAX_SUBSTITUTES = 16  # unreadable target images in a row before an item gives up
VOXEL_RES = 32
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
_CLASS_INDEX = {synset: i for i, synset in enumerate(taxonomy.ALL_SYNSETS)}


def class_names() -> list[str]:
    """Short class names in class-index order (``airplane``, ``bench``, ...)."""
    return [taxonomy.class_name(s) for s in taxonomy.ALL_SYNSETS]


def class_index(synset: str) -> int:
    """Class index of a synset id; ``KeyError`` for classes outside the 13."""
    return _CLASS_INDEX[synset]


def view_angles(location: Sequence[float]) -> tuple[float, float]:
    """``(azimuth, elevation)`` in degrees of a camera at ``location`` in the ShapeNet frame
    (+Y up), looking at the origin: the inverse of :meth:`synth_render.r2n2.View.location_shapenet`.

    In that frame a camera at azimuth ``a``, elevation ``e`` sits at
    ``d * (cos e cos a, sin e, -cos e sin a)``; azimuth is returned in [0, 360).
    """
    x, y, z = (float(v) for v in location)
    azimuth = math.degrees(math.atan2(-z, x)) % 360.0
    elevation = math.degrees(math.atan2(y, math.hypot(x, z)))
    return azimuth, elevation


# ---------------------------------------------------------------------------------------------
# Augmentation (both domains alike)
# ---------------------------------------------------------------------------------------------

MAX_SHIFT_PX = 2
JITTER = 0.1  # relative brightness, contrast and saturation range


class SeededIndex(int):
    """An item index that carries the seed of that item's random draws.

    The training sampler (:class:`backend.training.sampler.StepBatchSampler`) hands these out with
    ``seed = (stream seed, rank, step, position in batch)``: augmentation and cut-paste of an
    item are then a function of where it sits in the run, wherever it is loaded (main process
    or any loader worker) and however often the run was resumed. It is an ``int``, so any data
    set can take it; a plain ``int`` index draws its seed from torch's global RNG instead
    (see :func:`item_rng`).
    """

    seed: tuple[int, ...]

    def __new__(cls, index: int, seed: Sequence[int]) -> SeededIndex:
        obj = super().__new__(cls, index)
        obj.seed = tuple(int(s) for s in seed)
        return obj

    def __reduce__(self):  # to loader workers: index and seed, not a bare int
        return SeededIndex, (int(self), self.seed)

    def __repr__(self) -> str:
        return f"SeededIndex({int(self)}, seed={self.seed})"


def item_rng(i: int) -> np.random.Generator:
    """The generator of item ``i``'s random draws: seeded by ``i.seed`` for a
    :class:`SeededIndex` (non-negative ints), else by one draw from torch's global RNG, which
    DataLoader seeds differently in every worker (numpy's global RNG would repeat the same
    draws in each worker). About 15 us: nothing next to decoding the image."""
    seed = getattr(i, "seed", None)
    return _torch_seeded_rng() if seed is None else np.random.default_rng(seed)


def _torch_seeded_rng() -> np.random.Generator:
    return np.random.default_rng(int(torch.randint(0, 2 ** 62, ()).item()))


def augment_image(image: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """Light, label-preserving augmentation of a preprocessed (3, S, S) image in [-1, 1].

    Colour jitter (brightness, contrast, saturation within +-10 %) and a random translation of
    at most 2 pixels whose uncovered border replicates the edge. No horizontal flip: it would
    mirror the shape, so the voxels and the azimuth would have to be mirrored too.

    The five uniform draws come from ``rng`` (the item's, :func:`item_rng`; default: one
    seeded from torch's global RNG). The arithmetic is numpy: the same dozen tiny ops in torch
    took 19 ms instead of 0.16 ms in the main process, where torch's intra-op threads compete
    for the cores.
    """
    u = (rng if rng is not None else _torch_seeded_rng()).random(5)
    b, c, s = 1.0 + JITTER * (2 * u[:3] - 1)
    dx, dy = (np.floor(u[3:] * (2 * MAX_SHIFT_PX + 1)) - MAX_SHIFT_PX).astype(int)
    rgb = (image + 1.0) / 2.0 * b  # (3, S, S) in [0, 1], brightness
    mean = rgb.mean()
    rgb = (rgb - mean) * c + mean
    grey = rgb.mean(axis=0, keepdims=True)
    rgb = (rgb - grey) * s + grey
    rgb = _shift(np.clip(rgb, 0.0, 1.0), int(dx), int(dy))
    return (rgb * 2.0 - 1.0).astype(np.float32)


MIN_BACKGROUND_ZOOM = 0.5  # a pasted-on background is a crop of 50-100 % of a target image


def jittered_square(box: Sequence[float], rng: np.random.Generator, amount: float
                    ) -> tuple[float, float, float, float]:
    """A framing square ``(x, y, w, h)`` scaled by ``exp(U(-amount, amount))`` about its
    centre and shifted by up to ``amount / 2`` of its side along each axis: the crop errors a
    foreground model makes, so a network trained on them does not depend on exact framing."""
    x, y, w, h = (float(v) for v in box)
    u = rng.uniform(-1.0, 1.0, 3)
    k = math.exp(amount * u[0])
    cx, cy = x + w / 2 + u[1] * amount / 2 * w, y + h / 2 + u[2] * amount / 2 * h
    return cx - k * w / 2, cy - k * h / 2, k * w, k * h


def paste_over(image: np.ndarray, alpha: np.ndarray, background: np.ndarray) -> np.ndarray:
    """A render preprocessed over white (``(3, S, S)`` in [-1, 1]) put over ``background``
    (same shape) through its ``alpha`` (``(S, S)``): over white it was ``a*c + (1-a)``, so
    replacing the white (1) by the background adds ``(1-a) * (background - 1)``."""
    return (image + (1.0 - alpha)[None] * (background - 1.0)).astype(np.float32)


def background_crop(image: np.ndarray, u: np.ndarray) -> np.ndarray:
    """A square crop of a ``(3, S, S)`` image (side 50-100 %, placed by ``u[1:3]`` in [0, 1),
    zoom by ``u[0]``), resized back to ``S`` (bilinear): backgrounds of varied scale."""
    size = image.shape[1]
    side = max(2, round(size * (MIN_BACKGROUND_ZOOM + (1 - MIN_BACKGROUND_ZOOM) * u[0])))
    x0, y0 = (int(v * (size - side + 1)) for v in u[1:3])
    crop = Image.fromarray(to_uint8(image[:, y0:y0 + side, x0:x0 + side]))
    rgb = np.asarray(crop.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32)
    return (rgb / 127.5 - 1.0).transpose(2, 0, 1)


def _shift(img: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """Translate (C, H, W) by (dx, dy) pixels, replicating edge pixels into the gap."""
    _, h, w = img.shape
    rows = np.clip(np.arange(h) - dy, 0, h - 1)
    cols = np.clip(np.arange(w) - dx, 0, w - 1)
    return img[:, rows[:, None], cols[None, :]]


# ---------------------------------------------------------------------------------------------
# Rendered views + voxels (R2N2 layout)
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Model:
    key: str
    class_index: int
    files: tuple[Path, ...]  # one image per view
    views: tuple[tuple[float, float], ...]  # (azimuth, elevation) per view


def _parse_key(key: str) -> tuple[str, str]:
    synset, sep, model_id = key.partition("/")
    if not sep or not synset or not model_id or "/" in model_id:
        raise ValueError(f"bad model key {key!r}; expected '<synset>/<model_id>'")
    return synset, model_id


def _render_model(render_root: Path, key: str, views: int | None) -> _Model | None:
    """The model's complete views, or ``None`` when its renders are missing or incomplete."""
    synset, model_id = _parse_key(key)
    if synset not in _CLASS_INDEX:
        return None
    render_dir = r2n2.rendering_dir(render_root, synset, model_id)
    try:
        if not r2n2.is_complete(render_dir):
            return None
        names = r2n2.read_renderings(render_dir)
        cams = r2n2.read_metadata(render_dir)
    except (OSError, ValueError) as exc:
        log.debug("%s: unreadable render index (%s)", key, exc)
        return None
    if len(names) != len(cams) or not names:
        return None
    n = len(names) if views is None else min(views, len(names))
    return _Model(key, _CLASS_INDEX[synset], tuple(render_dir / f for f in names[:n]),
                  tuple((c.azimuth, c.elevation) for c in cams[:n]))


def read_voxel_grid(voxel_root: str | os.PathLike, key: str,
                    voxel_res: int = VOXEL_RES) -> np.ndarray | None:
    """The (R, R, R) bool grid of ``key`` under an R2N2-layout voxel tree, in the canonical
    frame, or ``None`` when it is missing, unreadable or not ``voxel_res``³ (logged at debug
    level). Check the tree's conventions first (:func:`synth_render.r2n2.tree_conventions`)."""
    path = r2n2.voxel_path(Path(voxel_root), *_parse_key(key))
    try:
        grid = r2n2.read_voxels(path).grid
    except (OSError, ValueError) as exc:
        log.debug("%s: no usable voxels (%s)", key, exc)
        return None
    if grid.shape != (voxel_res,) * 3:
        log.debug("%s: voxel grid %s, expected %d^3", key, grid.shape, voxel_res)
        return None
    return grid


def _hidden(relative: Path) -> bool:
    """A dot-file or a file in a dot-folder (``._photo.jpg`` from macOS, ``.thumbnails``)."""
    return any(part.startswith(".") for part in relative.parts)


def _warn_skipped(what: str, skipped: list[str], total: int) -> None:
    if skipped:
        shown = ", ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else "")
        log.warning("%s: skipped %d of %d models (%s)", what, len(skipped), total, shown)


class RenderVoxelDataset(Dataset):
    """One item per (model, view) of R2N2-layout renders paired with ShapeNetVox32 voxels.

    ``keys``: ``"<synset>/<model_id>"`` (e.g. a subset of the split file). ``views``: ``None``
    for every view listed in a model's ``renderings.txt``, an int ``n`` for the first ``n``.
    Models whose renders are missing or incomplete, whose voxels are missing, unreadable or not
    ``voxel_res``³, or whose class is not one of the 13 are skipped with one warning at
    construction, so an epoch never fails half-way; ``ValueError`` when nothing is left.
    Voxel grids are read once and kept in memory as packed bits (4 KiB a model at 32³).

    ``backgrounds`` (unsupervised training): with probability ``paste_p`` a render with alpha
    is pasted over a random crop of one of these unlabelled images instead of white, so the
    source pairs show the target domain's surroundings (cut-paste; images only, no labels).
    """

    def __init__(self, render_root: str | os.PathLike, voxel_root: str | os.PathLike,
                 keys: Iterable[str], size: int = IMAGE_SIZE, views: int | None = None,
                 augment: bool = False, voxel_res: int = VOXEL_RES,
                 backgrounds: ImageOnlyDataset | None = None, paste_p: float = 0.0,
                 autocrop: bool = False, segmenter: Segmenter | None = None,
                 framing_jitter: float = 0.0) -> None:
        if views is not None and views < 1:
            raise ValueError(f"views must be positive or None, got {views}")
        if not 0.0 <= paste_p <= 1.0:
            raise ValueError(f"paste_p must be in [0, 1], got {paste_p}")
        self.size, self.augment, self.voxel_res = size, augment, voxel_res
        self.backgrounds, self.paste_p = backgrounds, paste_p
        # framing, as in preprocess; with augmentation the square is jittered
        self.autocrop, self.segmenter, self.framing_jitter = autocrop, segmenter, framing_jitter
        # Refuses trees from before the R2N2 conventions (their frame and azimuths differ).
        r2n2.tree_conventions(render_root, r2n2.RENDERS)
        r2n2.tree_conventions(voxel_root, r2n2.VOXELS)
        keys = list(dict.fromkeys(keys))
        self.models: list[_Model] = []
        self._packed: list[np.ndarray] = []
        skipped = []
        for key in keys:
            model = _render_model(Path(render_root), key, views)
            packed = None if model is None else self._load_voxels(Path(voxel_root), key)
            if packed is None:
                skipped.append(key)
                continue
            self.models.append(model)
            self._packed.append(packed)
        _warn_skipped(f"renders {render_root} + voxels {voxel_root}", skipped, len(keys))
        if not self.models:
            raise ValueError(f"no usable models: none of {len(keys)} keys has complete renders "
                             f"under {render_root} and voxels under {voxel_root}")
        # (model index, view index) of every item, in key then view order.
        self.index = [(m, v) for m, model in enumerate(self.models)
                      for v in range(len(model.files))]

    def _load_voxels(self, voxel_root: Path, key: str) -> np.ndarray | None:
        grid = read_voxel_grid(voxel_root, key, self.voxel_res)
        return None if grid is None else np.packbits(grid)

    @property
    def keys(self) -> list[str]:
        """Keys of the models that are used, in order."""
        return [m.key for m in self.models]

    def voxels(self, model: int) -> torch.Tensor:
        """(R, R, R) float32 occupancy of the ``model``-th model, indexed [x, y, z]."""
        n = self.voxel_res ** 3
        grid = np.unpackbits(self._packed[model], count=n).reshape((self.voxel_res,) * 3)
        return torch.from_numpy(grid.astype(np.float32))

    def __len__(self) -> int:
        return len(self.index)

    def _pasted(self, render: Image.Image, image: np.ndarray, rng: np.random.Generator,
                crop: Sequence[float] | None = None) -> np.ndarray:
        alpha = alpha_mask(render, self.size, crop)
        if alpha is None:  # an opaque render has no outside to fill
            return image
        u = rng.random(4)  # which target image, then the crop's zoom and place
        _, other = self.backgrounds.load(int(u[0] * len(self.backgrounds)))
        return paste_over(image, alpha, background_crop(other, u[1:]))

    def __getitem__(self, i: int) -> dict:
        m, v = self.index[i]
        model = self.models[m]
        # The item's own generator (seeded by a SeededIndex, see item_rng); none is made, and
        # no global RNG is touched, when nothing is random (validation).
        rng = item_rng(i) if self.augment or self.backgrounds is not None else None
        paste = self.backgrounds is not None and rng.random() < self.paste_p
        # decoded once when pasting or framing: the framing, the pixels and the alpha come
        # from it
        source = load_image(model.files[v]) if paste or self.autocrop else model.files[v]
        crop = None
        if self.autocrop:  # the square framing picks, jittered when augmenting
            crop = framing_of(source, segmenter=self.segmenter).box
            if self.augment and self.framing_jitter > 0:
                crop = jittered_square(crop, rng, self.framing_jitter)
        image = preprocess(source, self.size, crop=crop)
        if paste:
            image = self._pasted(source, image, rng, crop)
        if self.augment:
            image = augment_image(image, rng)
        return {"image": torch.from_numpy(image), "voxels": self.voxels(m),
                "class_index": torch.tensor(model.class_index, dtype=torch.long),
                "view": torch.tensor(model.views[v], dtype=torch.float32),
                "key": model.key, "view_index": v}


# ---------------------------------------------------------------------------------------------
# Images only (unsupervised target domain, user folders)
# ---------------------------------------------------------------------------------------------

class ImageOnlyDataset(Dataset):
    """Unlabeled images: items are ``{"image": (3, S, S), "path": str}`` and nothing else.

    It holds image file paths only, so it cannot hand out (or reach) voxels, classes or views.
    Build it with :meth:`from_folder` (any tree of photos) or :meth:`from_r2n2` (the target
    domain's renders of a split's keys).
    """

    def __init__(self, files: Iterable[str | os.PathLike], size: int = IMAGE_SIZE,
                 augment: bool = False) -> None:
        self.files = [Path(f) for f in files]
        if not self.files:
            raise ValueError("ImageOnlyDataset needs at least one image file")
        self.size, self.augment = size, augment
        self._unreadable: set[Path] = set()
        # Framing: each file's square (cached, e.g. from the foreground model), jittered when
        # augmenting; see use_framing.
        self.squares: dict[str, tuple] | None = None
        self.framing_jitter = 0.0

    def use_framing(self, squares: Mapping[str, Sequence[float]], jitter: float = 0.0) -> None:
        """Frame each image by its square in ``squares`` (keyed by ``str(path)``; a file
        without one is used whole), jittered by ``jitter`` (:func:`jittered_square`)."""
        self.squares = {k: tuple(float(x) for x in v) for k, v in squares.items()}
        self.framing_jitter = jitter

    @classmethod
    def from_folder(cls, root: str | os.PathLike, size: int = IMAGE_SIZE,
                    augment: bool = False) -> ImageOnlyDataset:
        """Every .jpg/.jpeg/.png/.webp file under ``root`` (any depth, any letter case),
        sorted by path."""
        root = Path(root)
        if not root.is_dir():
            raise ValueError(f"image folder {root} does not exist")
        files = sorted(p for p in root.rglob("*")
                       if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                       and not _hidden(p.relative_to(root)))
        if not files:
            raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {root}")
        return cls(files, size, augment)

    @classmethod
    def from_r2n2(cls, render_root: str | os.PathLike, keys: Iterable[str],
                  size: int = IMAGE_SIZE, views: int | None = None,
                  augment: bool = False) -> ImageOnlyDataset:
        """The rendered views ``<render_root>/<synset>/<id>/rendering/*.png`` of ``keys``
        (those listed in ``renderings.txt``; the first ``views`` of them when given). Models
        without complete renders are skipped with one warning."""
        keys = list(dict.fromkeys(keys))
        files: list[Path] = []
        skipped = []
        for key in keys:
            model = _render_model(Path(render_root), key, views)
            if model is None:
                skipped.append(key)
            else:
                files.extend(model.files)  # image paths only: no labels leave this function
        _warn_skipped(f"renders {render_root}", skipped, len(keys))
        if not files:
            raise ValueError(f"no complete renders for any of {len(keys)} keys "
                             f"under {render_root}")
        return cls(files, size, augment)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict:
        rng = item_rng(i) if self.augment else None
        path, image = self.load(i, rng)
        if self.augment:
            image = augment_image(image, rng)
        return {"image": torch.from_numpy(image), "path": str(path)}

    def load(self, i: int, rng: np.random.Generator | None = None) -> tuple[Path, np.ndarray]:
        """The ``i``-th image, preprocessed (not augmented; framed when :meth:`use_framing`
        was called, its square jittered with ``rng``), and its path.

        A folder of user photos may hold a truncated or oversized file. Failing would stop
        training at the same step on every resume (the order depends on the step only), so
        the next readable image stands in, the same one every time."""
        for attempt in range(min(len(self.files), MAX_SUBSTITUTES + 1)):
            path = self.files[(i + attempt) % len(self.files)]
            try:
                return path, preprocess(path, self.size, crop=self._square(path, rng))
            except ImageError as exc:
                self._warn_unreadable(path, exc)
        raise ImageError(f"images {i}..{i + attempt} of {len(self.files)} are all "
                         "unreadable (see the warnings above)")

    def _square(self, path: Path, rng: np.random.Generator | None) -> tuple | None:
        square = None if self.squares is None else self.squares.get(str(path))
        if square is not None and rng is not None and self.framing_jitter > 0:
            square = jittered_square(square, rng, self.framing_jitter)
        return square

    def _warn_unreadable(self, path: Path, exc: ImageError) -> None:
        if path not in self._unreadable:  # once per file (per loader worker)
            self._unreadable.add(path)
            log.warning("skipping unreadable image (%s)", exc)


# ---------------------------------------------------------------------------------------------
# Pix3D (real photos with aligned CAD models)
# ---------------------------------------------------------------------------------------------

# Pix3D category -> our class. bed, misc and tool have no counterpart among the 13 classes.
PIX3D_CLASSES: dict[str, str] = {
    "chair": "chair", "sofa": "sofa", "table": "table", "desk": "table",
    "bookcase": "cabinet", "wardrobe": "cabinet",
}


def _class_mapping(classes: Mapping[str, str] | Iterable[str] | None) -> dict[str, int]:
    """Pix3D category -> class index. ``None``: :data:`PIX3D_CLASSES`; a mapping replaces it
    (values are our class names or synset ids); a list of Pix3D categories keeps only those
    of the default mapping."""
    if classes is None:
        mapping = PIX3D_CLASSES
    elif isinstance(classes, Mapping):
        mapping = dict(classes)
    else:
        wanted = list(classes)
        unknown = [c for c in wanted if c not in PIX3D_CLASSES]
        if unknown:
            raise ValueError(f"Pix3D categories {unknown} have no default class; pass a "
                             f"mapping instead. Mapped: {sorted(PIX3D_CLASSES)}")
        mapping = {c: PIX3D_CLASSES[c] for c in wanted}
    return {cat: _CLASS_INDEX[taxonomy.resolve_class(ours)] for cat, ours in mapping.items()}


@dataclass(frozen=True)
class _Pix3DRecord:
    img: str
    mask: str
    model: str
    class_index: int
    bbox: tuple[float, float, float, float]
    view: tuple[float, float]


def _pix3d_view(record: dict) -> tuple[float, float]:
    cam = record.get("cam_position")
    if cam is None or len(cam) != 3:
        return math.nan, math.nan
    return view_angles(cam)


class Pix3DDataset(Dataset):
    """Pix3D (``pix3d.json``, ``img/``, ``mask/``, ``model/``): real photos for evaluation.

    Categories map to our classes by :data:`PIX3D_CLASSES` (chair, sofa, table, desk -> table,
    bookcase and wardrobe -> cabinet; bed, misc, tool are skipped) unless ``classes`` says
    otherwise (see :func:`_class_mapping`). As in Pix3D's own single-view evaluation,
    truncated and occluded photos are left out unless ``include_truncated`` /
    ``include_occluded``.

    Item (keys as in :class:`RenderVoxelDataset`; ``key`` is the record's ``img`` path):

    - ``image``: the photo with everything outside the mask white (the object on white, as in
      the renders), cropped to a square around ``bbox`` in which the object spans
      ``fraction`` of the side (the renders' median framing), then :func:`preprocess`.
    - ``voxels``: the record's OBJ voxelized at ``res``³ (cached per model file). Pix3D models
      are +Y up like ShapeNet; they are normalized like ShapeNet v2 (bounding box centred,
      unit diagonal) first, which places them exactly as our voxel grids place every shape
      (a cube fitted to the bounding box). Pix3D's ``voxel`` .mat files are not used.
    - ``view``: azimuth/elevation of ``cam_position`` by :func:`view_angles` (this assumes
      Pix3D's model frame matches ShapeNet's front direction too), NaN when absent.
    """

    def __init__(self, root: str | os.PathLike, size: int = IMAGE_SIZE,
                 classes: Mapping[str, str] | Iterable[str] | None = None, res: int = VOXEL_RES,
                 include_truncated: bool = False, include_occluded: bool = False,
                 fraction: float = OBJECT_FRACTION) -> None:
        self.root, self.size, self.res, self.fraction = Path(root), size, res, fraction
        mapping = _class_mapping(classes)
        annotations = self.root / "pix3d.json"
        try:
            records = json.loads(annotations.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read Pix3D annotations {annotations}: {exc}") from exc
        self.records = [r for r in (self._record(rec, mapping, include_truncated,
                                                 include_occluded) for rec in records) if r]
        log.info("Pix3D %s: %d of %d records used", self.root, len(self.records), len(records))
        if not self.records:
            raise ValueError(f"no usable Pix3D records in {annotations} for categories "
                             f"{sorted(mapping)}")
        self._voxel_cache: dict[str, np.ndarray] = {}

    def _record(self, rec: dict, mapping: dict[str, int], truncated: bool,
                occluded: bool) -> _Pix3DRecord | None:
        if rec.get("category") not in mapping:
            return None
        if (rec.get("truncated") and not truncated) or (rec.get("occluded") and not occluded):
            return None
        try:
            return _Pix3DRecord(rec["img"], rec["mask"], rec["model"], mapping[rec["category"]],
                                tuple(float(v) for v in rec["bbox"]), _pix3d_view(rec))
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("Pix3D record %s skipped: %s", rec.get("img"), exc)
            return None

    def __len__(self) -> int:
        return len(self.records)

    def image(self, i: int) -> np.ndarray:
        """The i-th photo as the network sees it: (3, S, S) float32 in [-1, 1]."""
        rec = self.records[i]
        # apply_exif=False: Pix3D's bbox and mask refer to the pixels as stored.
        rgb, _ = to_rgb(load_image(self.root / rec.img, apply_exif=False))
        mask = load_image(self.root / rec.mask, apply_exif=False).convert("L")
        if mask.size != (rgb.shape[1], rgb.shape[0]):  # a few Pix3D masks differ in size
            mask = mask.resize((rgb.shape[1], rgb.shape[0]), Image.Resampling.NEAREST)
        rgba = np.dstack([rgb, np.asarray(mask)])  # the mask as alpha: outside -> white
        return preprocess(rgba, self.size, crop=square_box_around(rec.bbox, self.fraction))

    def voxels(self, i: int) -> torch.Tensor:
        """(res, res, res) float32 occupancy of the i-th record's model, indexed [x, y, z]."""
        path = self.records[i].model
        if path not in self._voxel_cache:
            mesh = shapenet.load_mesh(self.root / path)
            vertices = shapenet.normalize_v2(np.asarray(mesh.vertices, dtype=np.float64))
            grid = voxelize.voxelize_mesh(vertices, np.asarray(mesh.faces), self.res).grid
            self._voxel_cache[path] = np.packbits(grid)
        grid = np.unpackbits(self._voxel_cache[path], count=self.res ** 3)
        return torch.from_numpy(grid.reshape((self.res,) * 3).astype(np.float32))

    def __getitem__(self, i: int) -> dict:
        rec = self.records[i]
        return {"image": torch.from_numpy(self.image(i)), "voxels": self.voxels(i),
                "class_index": torch.tensor(rec.class_index, dtype=torch.long),
                "view": torch.tensor(rec.view, dtype=torch.float32),
                "key": rec.img, "view_index": 0}
