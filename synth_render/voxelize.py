"""Solid voxelization of triangle meshes in binvox's convention (``python -m synth_render voxelize``).

A voxel is filled when any triangle touches its box (a conservative surface, decided exactly by
the separating-axis test of triangle and box) or when it is inside: an empty voxel that a
6-connected flood fill from outside the grid cannot reach through empty voxels. Real meshes are
rarely watertight, so "inside" is decided by the voxel shell, not by the mesh, as binvox does.

Placement: a cube whose side ``scale`` is the largest bounding-box extent, centred on the
bounding-box centre, so the object is centred and touches the grid along its longest axis.
Voxel ``(i, j, k)`` covers ``translate + scale * [i, i + 1] / res`` (and likewise for j, k), in
the mesh's own coordinates (ShapeNet v1 models are not normalized; the binvox header records
where the grid sits).

Surface kernel: every triangle is moved to grid units (a voxel is the unit cube), then swept
over the voxel columns of its bounding box along its dominant normal axis. The plane test gives
each column's short run of candidate voxels directly, and the 2-D edge tests of the projection
onto the column's plane are done once per column, so the work is proportional to the triangle's
projected area plus the voxels it touches, not to its bounding-box volume.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
from numba import njit

from . import binvox, r2n2, shapenet
from .config import VoxelizeConfig
from .shards import take_shard

log = logging.getLogger(__name__)

# Relative slack of every separating-axis comparison, so that a triangle that exactly touches a
# voxel face still marks it despite rounding; a watertight surface then leaves no gaps.
_SLACK = 1e-9


# ---------------------------------------------------------------------------------------------
# Surface: triangle/box overlap (separating-axis theorem) in grid units, compiled with numba.
# ---------------------------------------------------------------------------------------------

@njit(cache=True, inline="always")
def _edge_bounds(p, q, r, a0, a1):
    """Separating-axis data of a triangle's three edges projected onto the plane (a0, a1).

    Returns a (3, 4) array of rows ``(m0, m1, lo, hi)``: the square of half-side 1/2 centred at
    ``c`` overlaps the projected triangle along edge normal ``m`` iff ``lo <= m . c <= hi``.
    """
    out = np.empty((3, 4))
    pts = ((p[a0], p[a1]), (q[a0], q[a1]), (r[a0], r[a1]))
    for e in range(3):
        s0, s1 = pts[e]
        t0, t1 = pts[(e + 1) % 3]
        m0, m1 = t1 - s1, s0 - t0  # normal of the 2-D edge; zero for a degenerate edge
        d0 = m0 * pts[0][0] + m1 * pts[0][1]
        d1 = m0 * pts[1][0] + m1 * pts[1][1]
        d2 = m0 * pts[2][0] + m1 * pts[2][1]
        rad = 0.5 * (abs(m0) + abs(m1)) * (1.0 + _SLACK) + _SLACK
        out[e, 0], out[e, 1] = m0, m1
        out[e, 2] = min(d0, d1, d2) - rad
        out[e, 3] = max(d0, d1, d2) + rad
    return out


@njit(cache=True, inline="always")
def _inside_edges(eb, c0, c1):
    """True when the unit square centred at (c0, c1) is on no edge's separating side."""
    for e in range(3):
        s = eb[e, 0] * c0 + eb[e, 1] * c1
        if s < eb[e, 2] or s > eb[e, 3]:
            return False
    return True


@njit(cache=True)
def _clamp_index(x, lo, hi):
    """float -> int clamped to [lo, hi]; safe for huge values (near-degenerate triangles)."""
    if x < lo:
        return lo
    if x > hi:
        return hi
    return int(x)


@njit(cache=True)
def _mark_surface(tris, res, flat):
    """Set ``flat[x*res*res + y*res + z] = 1`` for every voxel a triangle of ``tris`` touches.

    ``tris``: (F, 3, 3) float64 vertices in grid units (voxel i spans [i, i + 1]).
    Voxel boxes are closed, so a triangle lying on a voxel face marks both neighbours.
    """
    stride = np.array([res * res, res, 1])
    lo = np.empty(3, np.int64)
    hi = np.empty(3, np.int64)
    for f in range(tris.shape[0]):
        p, q, r = tris[f, 0], tris[f, 1], tris[f, 2]
        empty = False
        for a in range(3):  # box-normal axes: the voxel range of the bounding box
            lo[a] = _clamp_index(np.ceil(min(p[a], q[a], r[a])) - 1.0, 0, res - 1)
            hi[a] = _clamp_index(np.floor(max(p[a], q[a], r[a])), 0, res - 1)
            if min(p[a], q[a], r[a]) > res or max(p[a], q[a], r[a]) < 0:
                empty = True
        if empty:
            continue
        e1, e2 = q - p, r - p
        n = np.array([e1[1] * e2[2] - e1[2] * e2[1],
                      e1[2] * e2[0] - e1[0] * e2[2],
                      e1[0] * e2[1] - e1[1] * e2[0]])
        # Sweep along the dominant normal axis w; (u, v) index the columns.
        w = 0
        if abs(n[1]) > abs(n[w]):
            w = 1
        if abs(n[2]) > abs(n[w]):
            w = 2
        u, v = (w + 1) % 3, (w + 2) % 3
        uv = _edge_bounds(p, q, r, u, v)
        vw = _edge_bounds(p, q, r, v, w)
        wu = _edge_bounds(p, q, r, w, u)
        rad = 0.5 * (abs(n[0]) + abs(n[1]) + abs(n[2])) * (1.0 + _SLACK) + _SLACK
        dot_p = n[0] * p[0] + n[1] * p[1] + n[2] * p[2]
        for iu in range(lo[u], hi[u] + 1):
            cu = iu + 0.5
            for iv in range(lo[v], hi[v] + 1):
                cv = iv + 0.5
                if not _inside_edges(uv, cu, cv):
                    continue
                k0, k1 = lo[w], hi[w]
                if n[w] != 0.0:
                    # |n . c - n . p| <= rad solved for c_w, the centre k + 1/2 of the run.
                    base = dot_p - n[u] * cu - n[v] * cv
                    a, b = (base - rad) / n[w], (base + rad) / n[w]
                    if a > b:
                        a, b = b, a
                    k0 = max(k0, _clamp_index(np.ceil(a - 0.5), -1, res))
                    k1 = min(k1, _clamp_index(np.floor(b - 0.5), -1, res))
                for k in range(k0, k1 + 1):
                    cw = k + 0.5
                    if _inside_edges(vw, cv, cw) and _inside_edges(wu, cw, cu):
                        flat[iu * stride[u] + iv * stride[v] + k * stride[w]] = 1


# ---------------------------------------------------------------------------------------------
# Interior: empty voxels not 6-connected to the outside.
# ---------------------------------------------------------------------------------------------

@njit(cache=True)
def _fill_interior(grid):
    """Fill, in place, every empty voxel of ``grid`` (uint8, [x, y, z]) that no 6-connected path
    of empty voxels joins to the grid's border, i.e. to an empty layer padded around it."""
    nx, ny, nz = grid.shape
    # 0 empty/unvisited, 1 surface, 2 reached from outside.
    stack = np.empty((nx * ny * nz, 3), np.int32)
    top = 0
    for x in range(nx):
        for y in range(ny):
            for z in range(nz):
                on_border = x == 0 or y == 0 or z == 0 or x == nx - 1 or y == ny - 1 \
                    or z == nz - 1
                if on_border and grid[x, y, z] == 0:
                    grid[x, y, z] = 2
                    stack[top, 0], stack[top, 1], stack[top, 2] = x, y, z
                    top += 1
    while top > 0:
        top -= 1
        x, y, z = stack[top, 0], stack[top, 1], stack[top, 2]
        for d in range(6):
            a, b, c = x, y, z
            if d == 0:
                a -= 1
            elif d == 1:
                a += 1
            elif d == 2:
                b -= 1
            elif d == 3:
                b += 1
            elif d == 4:
                c -= 1
            else:
                c += 1
            if 0 <= a < nx and 0 <= b < ny and 0 <= c < nz and grid[a, b, c] == 0:
                grid[a, b, c] = 2
                stack[top, 0], stack[top, 1], stack[top, 2] = a, b, c
                top += 1
    # What the flood never reached is surface or interior.
    for x in range(nx):
        for y in range(ny):
            for z in range(nz):
                grid[x, y, z] = 1 if grid[x, y, z] != 2 else 0


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------

def placement(vertices: np.ndarray) -> tuple[tuple[float, float, float], float]:
    """``(translate, scale)`` of the grid cube: side = longest bounding-box extent, centred."""
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    scale = float((hi - lo).max())
    translate = (lo + hi) / 2 - scale / 2
    return (float(translate[0]), float(translate[1]), float(translate[2])), scale


def _check_mesh(vertices: np.ndarray, faces: np.ndarray) -> None:
    if vertices.ndim != 2 or vertices.shape[1] != 3 or len(vertices) == 0:
        raise ValueError(f"vertices must be a non-empty (V, 3) array, got {vertices.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3 or len(faces) == 0:
        raise ValueError(f"faces must be a non-empty (F, 3) array, got {faces.shape}")
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise ValueError("faces index vertices that do not exist")
    if not np.isfinite(vertices).all():
        raise ValueError("vertices contain NaN or infinity")


def surface_voxels(vertices: np.ndarray, faces: np.ndarray, res: int,
                   translate: Sequence[float], scale: float) -> np.ndarray:
    """(res, res, res) uint8 grid, [x, y, z], of the voxels the triangles touch."""
    grid_units = (np.asarray(vertices, np.float64) - np.asarray(translate)) * (res / scale)
    tris = np.ascontiguousarray(grid_units[faces])  # (F, 3, 3)
    flat = np.zeros(res ** 3, np.uint8)
    _mark_surface(tris, res, flat)
    return flat.reshape(res, res, res)


def voxelize_mesh(vertices: np.ndarray, faces: np.ndarray, res: int = 32) -> binvox.Voxels:
    """Solid occupancy of a triangle mesh in binvox's convention (see the module docstring).

    Degenerate triangles (zero area, repeated vertices) are handled as the segments or points
    they are; the mesh need not be watertight. Raises ``ValueError`` for empty or invalid input.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    if res < 1:
        raise ValueError(f"res must be positive, got {res}")
    _check_mesh(vertices, faces)
    translate, scale = placement(vertices)
    if not scale > 0:
        raise ValueError("degenerate mesh: all vertices coincide")
    grid = surface_voxels(vertices, faces, res, translate, scale)
    _fill_interior(grid)
    return binvox.Voxels(grid.astype(bool), translate, scale)


def voxelize_file(path: str | os.PathLike, res: int = 32) -> binvox.Voxels:
    """Load a mesh file (OBJ or anything trimesh reads) and voxelize it in its own coordinates."""
    mesh = shapenet.load_mesh(path)  # raises ValueError for unreadable or empty files
    try:
        return voxelize_mesh(mesh.vertices, mesh.faces, res)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


# ---------------------------------------------------------------------------------------------
# The ``voxelize`` command: a ShapeNet tree -> ShapeNetVox32 layout.
# ---------------------------------------------------------------------------------------------

def _voxelize_one(mesh_path: Path, out_path: Path, res: int) -> str | None:
    """Voxelize one model and write it; the error message on failure, ``None`` on success."""
    try:
        vox = voxelize_file(mesh_path, res)
        binvox.write_binvox(out_path, vox.grid, vox.translate, vox.scale)
    except Exception as exc:  # one bad model must never stop the run
        return f"{type(exc).__name__}: {exc}"
    return None


def _run_serial(jobs, res, on_done) -> None:
    for ref, out_path in jobs:
        on_done(ref, _voxelize_one(ref.mesh_path, out_path, res))


def _run_pool(jobs, res, workers, on_done) -> list:
    """Run jobs in a process pool; returns the jobs lost because a worker process died."""
    lost = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(_voxelize_one, ref.mesh_path, out, res): (ref, out)
                   for ref, out in jobs}
        for fut in as_completed(futures):
            try:
                on_done(futures[fut][0], fut.result())
            except BrokenProcessPool:
                lost.append(futures[fut])
    return lost


def _run_parallel(jobs, res, workers, on_done) -> None:
    lost = _run_pool(jobs, res, workers, on_done)
    if lost:
        # A worker died (a crash, not an exception): retry each lost model alone, so only the
        # culprit fails.
        log.warning("a worker process died; retrying %d models one at a time", len(lost))
        for job in lost:
            if _run_pool([job], res, 1, on_done):
                on_done(job[0], "worker process died")


def run_voxelize(cfg: VoxelizeConfig) -> int:
    """Voxelize every model of shard ``cfg.shard`` of a v1/v2 tree into ``cfg.out``.

    Resumable (models whose ``model.binvox`` exists are skipped) and fault tolerant (a model
    that fails is logged and skipped). Returns 1 when any model failed, else 0.
    """
    from tqdm import tqdm

    refs = shapenet.find_models(cfg.shapes, cfg.synsets or None)
    refs = take_shard(refs, [r.key for r in refs], cfg.shard)
    jobs = [(r, r2n2.voxel_path(cfg.out, r.synset, r.model_id)) for r in refs]
    todo = [(r, p) for r, p in jobs if not p.is_file()]
    skipped = len(jobs) - len(todo)
    log.info("voxelize %d models at %d^3 (%d already done, shard %d/%d, %d workers)",
             len(todo), cfg.res, skipped, cfg.shard[0], cfg.shard[1], cfg.workers)
    failures: dict[str, str] = {}
    start = time.perf_counter()
    with tqdm(total=len(todo), unit="model", desc="voxelize") as bar:
        def on_done(ref, error):
            if error is not None:
                failures[ref.key] = error
                log.error("%s failed: %s", ref.key, error)
            bar.update(1)

        if cfg.workers > 1 and len(todo) > 1:
            _run_parallel(todo, cfg.res, cfg.workers, on_done)
        else:
            _run_serial(todo, cfg.res, on_done)
    elapsed = time.perf_counter() - start
    log.info("voxelize done: %d written, %d skipped (already done), %d failed in %.1f s",
             len(todo) - len(failures), skipped, len(failures), elapsed)
    for key, error in sorted(failures.items()):
        log.info("  failed %s: %s", key, error)
    return 1 if failures else 0
