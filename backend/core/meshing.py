"""Voxel grids to meshes (the one owner of voxel -> mesh; numpy, PyMCubes and trimesh, no torch).

Convention: a grid of ``D³`` probabilities is indexed ``[x, y, z]`` and its axes ARE the model's
axes (ShapeNet's and glTF's frame: +Y up, -Z front; see :mod:`synth_render.binvox`). The grid
fills the unit cube centred at the origin: voxel ``i``'s centre is at ``(i + 0.5) / D - 0.5``,
so a full grid meshes to exactly ``[-0.5, 0.5]³``. Blender's importers turn +Y up into +Z up.

Marching cubes runs on the grid padded by one empty layer, so a shape that touches the border
still gives a closed surface. Used by the daemon (reconstruct replies), the add-on's meshes and
evaluation (F-score surface points, gallery renders), so all of them see the same surface.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import mcubes
import numpy as np
import trimesh

MESH_FORMATS = ("obj", "ply", "glb")


def voxels_to_mesh(probs: np.ndarray, threshold: float = 0.5, smooth: bool = False,
                   smooth_iterations: int = 10) -> trimesh.Trimesh:
    """The ``threshold`` isosurface of a ``(D, D, D)`` grid as a mesh in object coordinates.

    ``smooth`` applies Taubin smoothing (which, unlike plain Laplacian smoothing, barely
    shrinks the shape) to remove the staircase of a binary grid. Normals point outwards.
    Raises ``ValueError`` when no voxel reaches the threshold.
    """
    grid = _check_grid(probs)
    if not np.any(grid >= threshold):
        raise ValueError(f"empty grid: no voxel reaches the threshold {threshold:g} "
                         f"(max probability {float(grid.max()):.3g})")
    padded = np.pad(grid, 1, mode="constant", constant_values=min(0.0, float(grid.min())))
    vertices, faces = mcubes.marching_cubes(padded, float(threshold))
    # Padded index p is voxel p - 1, whose centre is at (p - 1 + 0.5) / D - 0.5.
    d = grid.shape[0]
    vertices = (vertices - 0.5) / d - 0.5
    mesh = trimesh.Trimesh(vertices=vertices, faces=faces.astype(np.int64), process=True)
    _orient_outwards(mesh)
    if smooth:
        trimesh.smoothing.filter_taubin(mesh, iterations=smooth_iterations)
        np.clip(mesh.vertices, -0.5, 0.5, out=mesh.vertices)
    return mesh


def _check_grid(probs: np.ndarray) -> np.ndarray:
    grid = np.asarray(probs, dtype=np.float32)
    if grid.ndim != 3 or len(set(grid.shape)) != 1:
        raise ValueError(f"expected a cubic (D, D, D) grid, got shape {grid.shape}")
    if not np.all(np.isfinite(grid)):
        raise ValueError("grid holds NaN or infinite values")
    return grid


def _orient_outwards(mesh: trimesh.Trimesh) -> None:
    """Flip all faces when the surface encloses negative volume.

    Marching cubes orients every triangle the same way relative to the field's gradient, so one
    global sign test is enough (components never disagree with each other).
    """
    if len(mesh.faces) and mesh.volume < 0:
        mesh.invert()


def export_mesh(mesh: trimesh.Trimesh, fmt: str) -> bytes:
    """Encode a mesh as ``obj``, ``ply`` (binary) or ``glb`` bytes."""
    fmt = fmt.lower().lstrip(".")
    if fmt not in MESH_FORMATS:
        raise ValueError(f"unknown mesh format {fmt!r}; expected one of {MESH_FORMATS}")
    if fmt == "obj":
        # Normals would double the file; importers recompute them from the consistent winding.
        text = trimesh.exchange.obj.export_obj(mesh, include_normals=False, include_color=False,
                                               include_texture=False)
        return text.encode("utf-8")
    if fmt == "ply":
        return trimesh.exchange.ply.export_ply(mesh, encoding="binary")
    buffer = io.BytesIO()
    mesh.export(buffer, file_type="glb")
    return buffer.getvalue()


def fuse_probabilities(probs: Sequence[np.ndarray]) -> np.ndarray:
    """Multi-view fusion: the voxel-wise mean of several ``(D, D, D)`` probability grids."""
    grids = [np.asarray(p, dtype=np.float32) for p in probs]
    if not grids:
        raise ValueError("nothing to fuse: no probability grids given")
    shapes = {g.shape for g in grids}
    if len(shapes) != 1:
        raise ValueError(f"cannot fuse grids of different shapes {sorted(shapes)}")
    return np.mean(np.stack(grids), axis=0)


def sample_surface_points(mesh: trimesh.Trimesh, n: int, seed: int = 0) -> np.ndarray:
    """``n`` points drawn uniformly by area from the mesh surface, reproducibly: ``(n, 3)``."""
    points, _ = trimesh.sample.sample_surface(mesh, int(n), seed=seed)
    return np.asarray(points, dtype=np.float64)
