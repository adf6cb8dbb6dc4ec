"""The project's one canonical object frame and camera convention, and ShapeNet v1's frame.

**Canonical frame** (ShapeNetCore v2's): +Y up, the object's front towards -Z, right-handed.
Every reader converts into this frame and every writer out of it; meshes, voxel grids
(``grid[x, y, z]``), the network's output and the daemon's meshes are all in it.

**Canonical viewpoint** (the project's renderer, training labels, ``eval``'s viewpoint errors,
the daemon's replies and the add-on's aligned camera): a camera at azimuth ``a``, elevation
``e`` (degrees) and distance ``d`` sits at ``d * (cos e cos a, sin e, -cos e sin a)`` in the
canonical frame, looking at the origin with the image's up towards +Y. Azimuth 0 looks at the
object's +X side, 90 at its front, 180 at its other side, 270 at its back.

**ShapeNet v1 frame** (ShapeNetCore v1's ``model.obj`` and 3D-R2N2's ShapeNetVox32 grids):
+Y up, front towards **+X**. A point maps to the canonical frame as ``x = z1, y = y1,
z = -x1`` (a quarter turn about +Y), and an n³ grid as ``g[i, j, k] = g1[n-1-k, j, i]``.
3D-R2N2's own camera convention is :mod:`synth_render.r2n2`'s business.
"""

from __future__ import annotations

import numpy as np

CANONICAL = "shapenet-v2"  # +Y up, -Z front
SHAPENET_V1 = "shapenet-v1"  # +Y up, +X front
FRAMES = (CANONICAL, SHAPENET_V1)


def v1_to_canonical_points(p) -> np.ndarray:
    """``(..., 3)`` points from ShapeNet v1's frame to the canonical one."""
    p = np.asarray(p, dtype=float)
    return np.stack([p[..., 2], p[..., 1], -p[..., 0]], axis=-1)


def canonical_to_v1_points(p) -> np.ndarray:
    """Inverse of :func:`v1_to_canonical_points`."""
    p = np.asarray(p, dtype=float)
    return np.stack([-p[..., 2], p[..., 1], p[..., 0]], axis=-1)


def v1_to_canonical_grid(grid: np.ndarray) -> np.ndarray:
    """An ``[x, y, z]`` grid in v1's frame as the same voxels in the canonical frame:
    ``g[i, j, k] = g1[n-1-k, j, i]``."""
    return np.ascontiguousarray(np.asarray(grid)[::-1].transpose(2, 1, 0))


def canonical_to_v1_grid(grid: np.ndarray) -> np.ndarray:
    """Inverse of :func:`v1_to_canonical_grid`: ``g1[i, j, k] = g[k, j, n-1-i]``."""
    return np.ascontiguousarray(np.asarray(grid).transpose(2, 1, 0)[::-1])


def v1_to_canonical_translate(translate, side: float) -> tuple[float, float, float]:
    """The low corner of a grid cube of side ``side`` at ``translate`` in v1's frame, seen in
    the canonical frame (the cube's corners move, so the low corner is another one)."""
    tx, ty, tz = (float(v) for v in translate)
    return (tz, ty, -tx - float(side))


def canonical_to_v1_translate(translate, side: float) -> tuple[float, float, float]:
    """Inverse of :func:`v1_to_canonical_translate`: ``(-t_z - s, t_y, t_x)``."""
    tx, ty, tz = (float(v) for v in translate)
    return (-tz - float(side), ty, tx)


def _as_points(p) -> np.ndarray:
    return np.asarray(p, dtype=float)


_TO_CANONICAL = {CANONICAL: _as_points, SHAPENET_V1: v1_to_canonical_points}
_FROM_CANONICAL = {CANONICAL: _as_points, SHAPENET_V1: canonical_to_v1_points}


def _converter(table: dict, frame: str):
    if frame not in table:
        raise ValueError(f"unknown frame {frame!r}; expected one of {', '.join(FRAMES)}")
    return table[frame]


def to_canonical_points(p, frame: str) -> np.ndarray:
    """Points in ``frame`` (one of :data:`FRAMES`) in the canonical frame."""
    return _converter(_TO_CANONICAL, frame)(p)


def from_canonical_points(p, frame: str) -> np.ndarray:
    """Canonical points in ``frame`` (one of :data:`FRAMES`)."""
    return _converter(_FROM_CANONICAL, frame)(p)
