"""3D-R2N2's ShapeNetRendering / ShapeNetVox32 layouts, conventions and camera (their one owner).

Renders: ``<out>/<synset>/<model_id>/rendering/NN.png`` with ``renderings.txt`` (file names)
and ``rendering_metadata.txt`` (one ``azimuth elevation 0 distance_ratio 25`` line per view).
Voxels: ``<out>/<synset>/<model_id>/model.binvox``.

Camera protocol: azimuth U[0, 360), elevation U[25, 30) degrees, distance
``ratio * MAX_CAMERA_DIST`` with ratio U[0.65, 0.95), a 35 mm lens on a 32 mm sensor, looking at
the origin of a model normalized to a unit bounding-box diagonal.

**Conventions (measured on real 3D-R2N2 files, not in this repository).** A layout is its
producer's conventions, and every R2N2-layout tree, real or written here, uses 3D-R2N2's:

- ShapeNetVox32 grids are in ShapeNet v1's frame (front +X, :mod:`synth_render.frames`);
  :func:`read_voxels` turns them into the canonical frame and :func:`write_voxels` back.
- A metadata azimuth ``a`` is the canonical viewpoint (:mod:`synth_render.frames`) at azimuth
  ``90 - a`` (mod 360), same elevation and distance: :func:`read_metadata` and
  :func:`write_index` convert, so a :class:`View` in memory is always canonical.
- Voxels are solid by binvox's carving and centred on the shorter axes.

Trees the project writes carry ``r2n2_conventions.json`` (:data:`CONVENTIONS_FILE`), which
also records the voxel fill and placement. A tree without it but with a file only this project
writes (``render_summary.json``, ``splits.json``, ``procedural.json``) is from before these
conventions (the project's own frame and azimuth): :func:`tree_conventions` refuses it and
names the conversion command. A tree with neither is a real 3D-R2N2 tree.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import binvox, frames
from .atomic import atomic_write_bytes, atomic_write_text

MAX_CAMERA_DIST = 1.75
LENS_MM = 35.0
SENSOR_MM = 32.0
FOV_FIELD = 25  # the constant last column of R2N2's metadata lines
AZIMUTH_RANGE = (0.0, 360.0)
ELEVATION_RANGE = (25.0, 30.0)
DISTANCE_RATIO_RANGE = (0.65, 0.95)

RENDERINGS_TXT = "renderings.txt"
METADATA_TXT = "rendering_metadata.txt"
VOXEL_FILE = "model.binvox"
MASK_DIR = "masks"  # object masks of photo-style views (see mask_path)

# --- conventions -------------------------------------------------------------------------------
CONVENTION = "r2n2"  # the only convention an R2N2-layout tree may have
VOXEL_FRAME = frames.SHAPENET_V1  # the frame of ShapeNetVox32 grids
AZIMUTH_OFFSET_DEG = 90.0  # R2N2 azimuth = offset - canonical azimuth (mod 360)
R2N2_FILL, R2N2_PLACEMENT = "carve", "centred"  # what real ShapeNetVox32 grids are
CONVENTIONS_FILE = "r2n2_conventions.json"
RENDERS, VOXELS = "renders", "voxels"  # tree kinds
# Files only this project writes (in a tree or beside it): their presence without the marker
# means a tree from before the conventions.
PROJECT_FILES = ("render_summary.json", "splits.json", "procedural.json")
CONVERSION_JOURNAL = ".r2n2-conversion.log"  # a conversion under way (convert_tree)
CONVERT_COMMAND = "python -m synth_render convert-r2n2"


@dataclass(frozen=True)
class View:
    """One camera of the R2N2 protocol in the canonical viewpoint convention
    (:mod:`synth_render.frames`; degrees, and a fraction of ``MAX_CAMERA_DIST``)."""

    azimuth: float
    elevation: float
    distance_ratio: float

    @property
    def distance(self) -> float:
        return self.distance_ratio * MAX_CAMERA_DIST

    def location_shapenet(self) -> np.ndarray:
        """Camera position in the ShapeNet frame (+Y up, -Z front)."""
        return blender_to_shapenet(self.location_blender())

    def location_blender(self) -> np.ndarray:
        """Camera position in Blender's frame (+Z up) after OBJ import (R2N2's renderer)."""
        az, el = math.radians(self.azimuth), math.radians(self.elevation)
        d = self.distance
        return np.array([d * math.cos(el) * math.cos(az), d * math.cos(el) * math.sin(az),
                         d * math.sin(el)])


def blender_to_shapenet(p: np.ndarray) -> np.ndarray:
    """Blender (+Z up) -> ShapeNet (+Y up); Blender's OBJ import maps (x, y, z) to (x, -z, y)."""
    p = np.asarray(p, dtype=float)
    return np.stack([p[..., 0], p[..., 2], -p[..., 1]], axis=-1)


def shapenet_to_blender(p: np.ndarray) -> np.ndarray:
    """Inverse of :func:`blender_to_shapenet`."""
    p = np.asarray(p, dtype=float)
    return np.stack([p[..., 0], -p[..., 2], p[..., 1]], axis=-1)


def sample_views(rng: np.random.Generator, n: int) -> list[View]:
    """Draw ``n`` views from R2N2's protocol."""
    az = rng.uniform(*AZIMUTH_RANGE, size=n)
    el = rng.uniform(*ELEVATION_RANGE, size=n)
    ratio = rng.uniform(*DISTANCE_RATIO_RANGE, size=n)
    return [View(float(a), float(e), float(r)) for a, e, r in zip(az, el, ratio, strict=True)]


def view_file_name(index: int) -> str:
    return f"{index:02d}.png"


def mask_path(render_dir: str | os.PathLike, index: int) -> Path:
    """The object mask of view ``index`` (our addition to the layout, photo style only):
    ``rendering/masks/NN.png``, 8-bit grey, the object's coverage of each pixel (255 = object;
    no shadow, floor or background), in the geometry of the view's PNG. R2N2 readers never
    look there."""
    return Path(render_dir) / MASK_DIR / view_file_name(index)


def rendering_dir(out: str | os.PathLike, synset: str, model_id: str) -> Path:
    return Path(out) / synset / model_id / "rendering"


def voxel_path(out: str | os.PathLike, synset: str, model_id: str) -> Path:
    return Path(out) / synset / model_id / VOXEL_FILE


def r2n2_azimuth(azimuth: float) -> float:
    """Canonical azimuth <-> R2N2 metadata azimuth (the mapping is its own inverse)."""
    return (AZIMUTH_OFFSET_DEG - float(azimuth)) % 360.0


def format_metadata_line(view: View) -> str:
    """A metadata line in R2N2's convention for a canonical ``view``."""
    return (f"{r2n2_azimuth(view.azimuth):.6f} {view.elevation:.6f} 0 "
            f"{view.distance_ratio:.6f} {FOV_FIELD}")


def write_index(render_dir: str | os.PathLike, views: list[View]) -> None:
    """Write ``renderings.txt`` and ``rendering_metadata.txt`` (R2N2's azimuths for canonical
    ``views``); the latter last, as the marker that the model's renders are complete."""
    render_dir = Path(render_dir)
    names = [view_file_name(i) for i in range(len(views))]
    atomic_write_text(render_dir / RENDERINGS_TXT, "\n".join(names) + "\n")
    lines = [format_metadata_line(v) for v in views]
    atomic_write_text(render_dir / METADATA_TXT, "\n".join(lines) + "\n")


def parse_metadata(text: str, where: str = "metadata") -> list[View]:
    """The views of a ``rendering_metadata.txt`` as written, azimuths untouched."""
    views = []
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 4:
            raise ValueError(f"bad metadata line {line!r} in {where}")
        try:
            views.append(View(float(fields[0]), float(fields[1]), float(fields[3])))
        except ValueError as exc:
            raise ValueError(f"bad metadata line {line!r} in {where}") from exc
    return views


def read_metadata(render_dir: str | os.PathLike) -> list[View]:
    """Read ``rendering_metadata.txt`` (R2N2's convention) into canonical views."""
    path = Path(render_dir) / METADATA_TXT
    return [View(r2n2_azimuth(v.azimuth), v.elevation, v.distance_ratio)
            for v in parse_metadata(path.read_text(), str(path))]


def read_renderings(render_dir: str | os.PathLike) -> list[str]:
    """File names listed in ``renderings.txt``."""
    text = (Path(render_dir) / RENDERINGS_TXT).read_text()
    return [line.strip() for line in text.splitlines() if line.strip()]


def is_complete(render_dir: str | os.PathLike, n_views: int | None = None) -> bool:
    """True when the index exists and every listed image is on disk (resume check)."""
    render_dir = Path(render_dir)
    if not (render_dir / METADATA_TXT).is_file() or not (render_dir / RENDERINGS_TXT).is_file():
        return False
    names = read_renderings(render_dir)
    if n_views is not None and len(names) != n_views:
        return False
    return all((render_dir / name).is_file() for name in names)


# ---------------------------------------------------------------------------------------------
# Voxels in R2N2's frame
# ---------------------------------------------------------------------------------------------

def voxels_to_canonical(vox: binvox.Voxels) -> binvox.Voxels:
    """A grid as stored in an R2N2 tree (ShapeNet v1's frame) in the canonical frame."""
    return binvox.Voxels(frames.v1_to_canonical_grid(vox.grid),
                         frames.v1_to_canonical_translate(vox.translate, vox.scale), vox.scale)


def voxels_from_canonical(vox: binvox.Voxels) -> binvox.Voxels:
    """A canonical grid as an R2N2 tree stores it (inverse of :func:`voxels_to_canonical`)."""
    return binvox.Voxels(frames.canonical_to_v1_grid(vox.grid),
                         frames.canonical_to_v1_translate(vox.translate, vox.scale), vox.scale)


def read_voxels(path: str | os.PathLike) -> binvox.Voxels:
    """A ShapeNetVox32-convention binvox file as a canonical-frame grid (``[x, y, z]``)."""
    return voxels_to_canonical(binvox.read_binvox(path))


def encode_voxels(vox: binvox.Voxels) -> bytes:
    """A canonical-frame grid as the bytes of a ShapeNetVox32-convention file (v1's frame)."""
    out = voxels_from_canonical(vox)
    return binvox.encode_binvox(out.grid, out.translate, out.scale)


def write_voxels(path: str | os.PathLike, vox: binvox.Voxels) -> None:
    """Write a canonical-frame grid in ShapeNetVox32's convention (v1's frame), atomically."""
    atomic_write_bytes(path, encode_voxels(vox))


# ---------------------------------------------------------------------------------------------
# Tree markers: which convention a tree follows
# ---------------------------------------------------------------------------------------------

class TreeConventionError(ValueError):
    """A tree whose conventions are not R2N2's, or not those a job asked for."""


def tree_kind(root: str | os.PathLike) -> str | None:
    """:data:`RENDERS` or :data:`VOXELS` by what the first model folders of ``root`` hold,
    ``None`` when it holds neither (or does not exist)."""
    root = Path(root)
    if not root.is_dir():
        return None
    for synset_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for model_dir in sorted(p for p in synset_dir.iterdir() if p.is_dir()):
            if (model_dir / "rendering").is_dir():
                return RENDERS
            if (model_dir / VOXEL_FILE).is_file():
                return VOXELS
    return None


def _project_files(root: Path) -> list[Path]:
    """Files only this project writes, in ``root``, beside it (a data set's or the demo's
    folder: ``splits.json``, ``shapes/procedural.json``, a sibling render tree's summary) or
    a conversion's journal; with models in ``root`` and no marker, they mean a tree from
    before the conventions."""
    found = sorted(root.glob("render_summary*.json"))
    found += sorted(root.parent.glob("*/render_summary*.json"))
    candidates = [root / CONVERSION_JOURNAL, root.parent / "shapes" / PROJECT_FILES[2]]
    candidates += [folder / n for folder in (root, root.parent) for n in PROJECT_FILES[1:]]
    return found + [path for path in candidates if path.is_file()]


def old_tree_message(root: Path, kind: str) -> str:
    return (f"{root} looks like a {kind} tree written by an earlier version of this project, "
            "in its own frame and camera convention rather than 3D-R2N2's (it has no "
            f"{CONVENTIONS_FILE}, and files this project writes are there or beside it); "
            f"convert it once, in place, with: {CONVERT_COMMAND} {root}   (if it is real "
            f"3D-R2N2 data instead, mark it so: {CONVERT_COMMAND} --mark-real {root})")


def read_marker(root: str | os.PathLike) -> dict | None:
    """The tree's :data:`CONVENTIONS_FILE`, or ``None`` when it has none."""
    path = Path(root) / CONVENTIONS_FILE
    if not path.is_file():
        return None
    try:
        marker = json.loads(path.read_text())
    except ValueError as exc:
        raise TreeConventionError(f"{path}: unreadable ({exc})") from exc
    if not isinstance(marker, dict) or marker.get("convention") != CONVENTION:
        raise TreeConventionError(f"{path}: convention {marker!r} is not {CONVENTION!r}; "
                                  "this version reads only 3D-R2N2's")
    return marker


def real_tree_conventions(kind: str) -> dict:
    """What an unmarked, real 3D-R2N2 tree of ``kind`` follows."""
    marker = {"convention": CONVENTION, "kind": kind, "source": "3D-R2N2"}
    if kind == VOXELS:
        marker.update(frame=VOXEL_FRAME, fill=R2N2_FILL, placement=R2N2_PLACEMENT)
    return marker


def tree_conventions(root: str | os.PathLike, kind: str) -> dict:
    """The conventions of an R2N2-layout tree of ``kind`` (:data:`RENDERS` / :data:`VOXELS`).

    Raises :class:`TreeConventionError` for a tree from before the conventions (the message
    names the conversion command) or a marker of another convention or kind.
    """
    root = Path(root)
    marker = read_marker(root)
    if marker is None:
        if tree_kind(root) is not None and _project_files(root):
            raise TreeConventionError(old_tree_message(root, kind))
        return real_tree_conventions(kind)
    if marker.get("kind") != kind:
        raise TreeConventionError(f"{root / CONVENTIONS_FILE}: a {marker.get('kind')} tree, "
                                  f"not a {kind} tree")
    return marker


def claim_tree(root: str | os.PathLike, kind: str, **fields) -> dict:
    """Make ``root`` a marked ``kind`` tree with ``fields`` (e.g. ``fill``, ``placement``)
    before a job writes into it, or refuse (:class:`TreeConventionError`) when what is there
    follows other conventions: mixing them would corrupt the data set."""
    root = Path(root)
    have = read_marker(root)
    if have is None and tree_kind(root) is not None:
        tree_conventions(root, kind)  # raises for an old tree, with the conversion command
        # Unmarked models whose origin is unknown: an old tree that left no other trace (a
        # standalone voxelize run, a killed render run) or real R2N2 data. Resuming into it
        # could mix conventions; the user says which it is.
        raise TreeConventionError(
            f"{root} holds {kind} but no {CONVENTIONS_FILE}, so its conventions are unknown; "
            f"write into an empty folder, or mark it first: {CONVERT_COMMAND} --assume-old "
            f"{root} (an earlier version of this project wrote it), or {CONVERT_COMMAND} "
            f"--mark-real {root} (real 3D-R2N2 data)")
    have = have or {}  # a folder without models (or without the folder) is a new tree
    want = {"convention": CONVENTION, "kind": kind, **fields}
    if kind == VOXELS:
        want["frame"] = VOXEL_FRAME
    clash = [f"{k} {have[k]!r} (now {v!r})" for k, v in want.items()
             if k in have and have[k] != v]
    if clash:
        raise TreeConventionError(f"{root} holds {kind} made with " + ", ".join(clash)
                                  + "; write into another folder (mixing would corrupt the "
                                  "data set)")
    if not have:
        write_marker(root, want)
    return want


def write_marker(root: str | os.PathLike, marker: dict) -> None:
    """Write the tree's :data:`CONVENTIONS_FILE` (atomically)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(root / CONVENTIONS_FILE, json.dumps(marker, indent=1) + "\n")
