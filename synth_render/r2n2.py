"""3D-R2N2's ShapeNetRendering / ShapeNetVox32 layouts and camera protocol (their one owner).

Renders: ``<out>/<synset>/<model_id>/rendering/NN.png`` with ``renderings.txt`` (file names)
and ``rendering_metadata.txt`` (one ``azimuth elevation 0 distance_ratio 25`` line per view).
Voxels: ``<out>/<synset>/<model_id>/model.binvox``.

Camera: azimuth U[0, 360), elevation U[25, 30) degrees, distance ``ratio * MAX_CAMERA_DIST``
with ratio U[0.65, 0.95), a 35 mm lens on a 32 mm sensor, looking at the origin of a model
normalized to a unit bounding-box diagonal.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import atomic_write_text

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


@dataclass(frozen=True)
class View:
    """One camera of the R2N2 protocol (degrees, and a fraction of ``MAX_CAMERA_DIST``)."""

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


def rendering_dir(out: str | os.PathLike, synset: str, model_id: str) -> Path:
    return Path(out) / synset / model_id / "rendering"


def voxel_path(out: str | os.PathLike, synset: str, model_id: str) -> Path:
    return Path(out) / synset / model_id / VOXEL_FILE


def format_metadata_line(view: View) -> str:
    return f"{view.azimuth:.6f} {view.elevation:.6f} 0 {view.distance_ratio:.6f} {FOV_FIELD}"


def write_index(render_dir: str | os.PathLike, views: list[View]) -> None:
    """Write ``renderings.txt`` and ``rendering_metadata.txt``; the latter last, as the
    marker that the model's renders are complete."""
    render_dir = Path(render_dir)
    names = [view_file_name(i) for i in range(len(views))]
    atomic_write_text(render_dir / RENDERINGS_TXT, "\n".join(names) + "\n")
    lines = [format_metadata_line(v) for v in views]
    atomic_write_text(render_dir / METADATA_TXT, "\n".join(lines) + "\n")


def read_metadata(render_dir: str | os.PathLike) -> list[View]:
    """Read ``rendering_metadata.txt`` (ours or 3D-R2N2's) into views."""
    views = []
    for line in (Path(render_dir) / METADATA_TXT).read_text().splitlines():
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 4:
            raise ValueError(f"bad metadata line {line!r} in {render_dir}")
        views.append(View(float(fields[0]), float(fields[1]), float(fields[3])))
    return views


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
