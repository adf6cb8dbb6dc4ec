"""The binvox format and the solid voxelizer, checked against independent methods (DESIGN §2).

Agreement on watertight meshes means: every voxel whose centre trimesh puts inside is filled,
and every filled voxel's centre is inside or within half a voxel diagonal of the surface, or in
an outside pocket that binvox's carving fills (walled in along all six axis directions).
"""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
import trimesh
from scipy import ndimage
from scipy.spatial.transform import Rotation

from synth_render import binvox, r2n2, voxelize
from synth_render.config import VoxelizeConfig
from synth_render.shards import stable_hash
from synth_render.voxelize import run_voxelize, voxelize_file, voxelize_mesh

SIX = ndimage.generate_binary_structure(3, 1)  # 6-connectivity

# ---------------------------------------------------------------------------------------------
# binvox
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1, 1), (5, 5, 5), (32, 32, 32), (7, 3, 5)])
@pytest.mark.parametrize("density", [0.02, 0.5, 0.98])
def test_binvox_round_trip_random(tmp_path, shape, density):
    rng = np.random.default_rng(stable_hash(f"{shape}{density}") % 2**32)
    grid = rng.random(shape) < density
    path = tmp_path / "g.binvox"
    binvox.write_binvox(path, grid, (-0.5, 0.25, 3.0), 1.5)
    vox = binvox.read_binvox(path)
    assert vox.grid.dtype == bool and vox.dims == shape
    np.testing.assert_array_equal(vox.grid, grid)
    assert vox.translate == (-0.5, 0.25, 3.0) and vox.scale == 1.5


# A 3x3x3 grid with three filled voxels, (x, y, z) = (0, 0, 1), (2, 1, 0), (1, 2, 2). In binvox
# order (x outermost, then z, then y fastest) their flat indices x*9 + z*3 + y are 3, 19, 17, so
# the 27-voxel stream is: 3 empty, 1 full, 13 empty, 1 full, 1 empty, 1 full, 7 empty.
HAND_FILLED = {(0, 0, 1), (2, 1, 0), (1, 2, 2)}
HAND_HEADER = b"#binvox 1\ndim 3 3 3\ntranslate -1 0 0.5\nscale 2\ndata\n"
HAND_DATA = bytes([0, 3, 1, 1, 0, 13, 1, 1, 0, 1, 1, 1, 0, 7])


def test_binvox_hand_written_file_axis_order(tmp_path):
    path = tmp_path / "hand.binvox"
    path.write_bytes(HAND_HEADER + HAND_DATA)
    vox = binvox.read_binvox(path)
    assert vox.dims == (3, 3, 3)
    assert vox.translate == (-1.0, 0.0, 0.5) and vox.scale == 2.0
    for x in range(3):
        for y in range(3):
            for z in range(3):
                assert vox.grid[x, y, z] == ((x, y, z) in HAND_FILLED), (x, y, z)
    # And the writer produces exactly those run-length bytes from the [x, y, z] grid.
    out = tmp_path / "written.binvox"
    binvox.write_binvox(out, vox.grid, vox.translate, vox.scale)
    written = out.read_bytes()
    assert written.split(b"data\n", 1)[1] == HAND_DATA


def test_binvox_runs_longer_than_255(tmp_path):
    path = tmp_path / "full.binvox"
    binvox.write_binvox(path, np.ones((8, 8, 8), bool))  # 512 = 255 + 255 + 2
    assert path.read_bytes().split(b"data\n", 1)[1] == bytes([1, 255, 1, 255, 1, 2])
    assert binvox.read_binvox(path).grid.all()
    # Hand-written: 300 empty voxels (split 255 + 45), then 212 full, in binvox order.
    path.write_bytes(b"#binvox 1\ndim 8 8 8\ntranslate 0 0 0\nscale 1\ndata\n"
                     + bytes([0, 255, 0, 45, 1, 212]))
    grid = binvox.read_binvox(path).grid
    flat = grid.transpose(0, 2, 1).ravel()  # back to binvox order (x, z, y)
    assert not flat[:300].any() and flat[300:].all()
    assert not grid[0, :, :].any() and grid[7, :, :].all()


@pytest.mark.parametrize("content", [
    b"hello world\n",
    b"#binvox 1\ntranslate 0 0 0\nscale 1\ndata\n\x00\x08",  # no dim
    b"#binvox 1\ndim 2 2\ndata\n\x00\x08",  # dim with two values
    b"#binvox 1\ndim 2 2 2\nscale one\ndata\n\x00\x08",  # bad number
    b"#binvox 1\ndim 2 2 2\n",  # header never ends
    b"#binvox 1\ndim 2 2 2\ndata\n\x00\x07",  # 7 voxels for 8
    b"#binvox 1\ndim 2 2 2\ndata\n\x00\x08\x01",  # odd run-length data
])
def test_binvox_bad_files_raise(tmp_path, content):
    path = tmp_path / "bad.binvox"
    path.write_bytes(content)
    with pytest.raises(binvox.BinvoxError):
        binvox.read_binvox(path)


# ---------------------------------------------------------------------------------------------
# Agreement with independent methods
# ---------------------------------------------------------------------------------------------

def _centres(vox: binvox.Voxels, idx: np.ndarray) -> np.ndarray:
    res = vox.grid.shape[0]
    return np.asarray(vox.translate) + vox.scale * (idx + 0.5) / res


def _band(grid: np.ndarray) -> np.ndarray:
    """Voxels where filled meets empty: where a wrong surface or a leak would show first."""
    grown = ndimage.binary_dilation(grid, SIX)
    shrunk = ndimage.binary_erosion(grid, SIX, border_value=0)
    return grown & ~shrunk


def assert_agrees(parts: list[trimesh.Trimesh], vox: binvox.Voxels, seed: int = 0,
                  max_band: int = 4000, n_random: int = 150,
                  cavities_in: trimesh.Trimesh | None = None) -> None:
    """Check DESIGN §2's agreement on the union of watertight ``parts``.

    Near the surface (the band where filled meets empty) the check uses trimesh's signed
    distance (positive inside; fast there); away from it, a random sample uses trimesh's
    ``contains`` (ray tests) and the distance for filled voxels that are outside.
    With ``cavities_in``, filled voxels outside every part may also be air that carving fills:
    air that the parts enclose (a closed cabinet), and since carving only looks along the axes,
    also outside pockets that no axis-aligned line reaches (the hole of a tilted torus, the
    space between a chair's legs and stretchers). binvox fills those too; they must be walled in
    by that mesh in all six axis directions (``_unenclosed``).
    """
    for part in parts:
        assert part.is_watertight
    rng = np.random.default_rng(seed)
    grid = vox.grid
    band = np.argwhere(_band(grid))
    if len(band) > max_band:
        band = band[rng.choice(len(band), max_band, replace=False)]
    rand = rng.integers(0, grid.shape[0], size=(n_random, 3))
    half_diag = 0.5 * np.sqrt(3) * vox.scale / grid.shape[0]
    tol = 1e-6 * vox.scale

    pts = _centres(vox, band)
    sd = np.stack([trimesh.proximity.signed_distance(p, pts) for p in parts])  # + inside
    inside = (sd > tol).any(axis=0)
    near = (np.abs(sd) <= half_diag + tol).any(axis=0)
    filled = grid[tuple(band.T)]
    _report(band[inside & ~filled], "inside but empty")
    _report(_unenclosed(band[filled & ~inside & ~near], vox, cavities_in),
            "filled but outside and far from the surface")

    pts = _centres(vox, rand)
    inside = np.stack([p.contains(pts) for p in parts]).any(axis=0)
    filled = grid[tuple(rand.T)]
    _report(rand[inside & ~filled], "inside (contains) but empty")
    suspect = filled & ~inside
    if suspect.any():
        dist = np.stack([np.abs(trimesh.proximity.signed_distance(p, pts[suspect]))
                         for p in parts]).min(axis=0)
        _report(_unenclosed(rand[suspect][dist > half_diag + tol], vox, cavities_in),
                "filled, outside (contains), far")


def _unenclosed(idx: np.ndarray, vox: binvox.Voxels, mesh: trimesh.Trimesh | None) -> np.ndarray:
    """The voxels of ``idx`` whose line of voxels escapes ``mesh`` along some axis direction.

    Carving blocks a line of voxels, a voxel wide, wherever the mesh touches it, so a ray from
    the voxel's centre alone can slip past a thin part that the line hits (the extra voxels a
    chair's legs wall in at 32^3): in each direction the line counts as walled when any of the
    rays from the 3 x 3 points of the voxel's closed cross-section (corners, edge midpoints,
    centre) hits the mesh.
    """
    if mesh is None or len(idx) == 0:
        return idx
    pts = _centres(vox, idx)
    offsets = np.array([-0.5, 0.0, 0.5]) * vox.scale / vox.grid.shape[0]
    walled = np.ones(len(idx), bool)
    for axis in range(3):
        u, v = (axis + 1) % 3, (axis + 2) % 3
        for sign in (1.0, -1.0):
            direction = np.tile(sign * np.eye(3)[axis], (len(pts), 1))
            hit = np.zeros(len(idx), bool)
            for du in offsets:
                for dv in offsets:
                    start = pts.copy()
                    start[:, u] += du
                    start[:, v] += dv
                    hit |= mesh.ray.intersects_any(start, direction)
            walled &= hit
    return idx[~walled]


def _report(bad: np.ndarray, what: str) -> None:
    assert len(bad) == 0, f"{len(bad)} voxels {what}, e.g. {bad[:5].tolist()}"


def assert_surface_covered(mesh: trimesh.Trimesh, vox: binvox.Voxels, n: int = 20000) -> None:
    """Every sampled surface point lies in a filled voxel (the surface is conservative)."""
    pts, _ = trimesh.sample.sample_surface(mesh, n, seed=1)
    res = vox.grid.shape[0]
    idx = np.floor((pts - np.asarray(vox.translate)) / vox.scale * res).astype(int)
    idx = np.clip(idx, 0, res - 1)
    _report(idx[~vox.grid[tuple(idx.T)]], "under surface samples but empty")


def assert_connected(grid: np.ndarray) -> None:
    _, n = ndimage.label(grid, SIX)
    assert n == 1, f"filled voxels form {n} 6-connected pieces"


def _vox(mesh: trimesh.Trimesh, res: int) -> binvox.Voxels:
    return voxelize_mesh(mesh.vertices, mesh.faces, res)


def _rotated(mesh: trimesh.Trimesh, seed: int) -> trimesh.Trimesh:
    mesh = mesh.copy()
    rot = np.eye(4)
    rot[:3, :3] = Rotation.random(random_state=seed).as_matrix()
    mesh.apply_transform(rot)
    return mesh


@pytest.fixture(scope="module")
def icosphere():
    return trimesh.creation.icosphere(subdivisions=5)  # 20,480 faces


def test_icosphere_32(icosphere):
    vox = _vox(icosphere, 32)
    assert_agrees([icosphere], vox, n_random=50)
    assert_surface_covered(icosphere, vox)
    # Sanity: the fill is about the sphere's volume (pi/6 of the cube), within the shell.
    assert 0.5 < vox.grid.mean() < 0.62


def test_icosphere_128_sampled(icosphere):
    vox = _vox(icosphere, 128)
    assert_agrees([icosphere], vox, max_band=3000, n_random=60)
    assert_surface_covered(icosphere, vox, n=50000)
    assert abs(vox.grid.mean() - np.pi / 6) < 0.03


def test_placement_centred_and_touching():
    box = trimesh.creation.box((2.0, 1.0, 0.5))
    box.apply_translation((10.0, -3.0, 7.0))  # v1 models are not normalized
    vox = _vox(box, 32)
    assert vox.scale == pytest.approx(2.0)
    np.testing.assert_allclose(vox.translate, (9.0, -4.0, 6.0))
    grid = vox.grid
    assert grid[0].any() and grid[-1].any()  # touches along the longest axis (x)
    np.testing.assert_array_equal(grid, grid[:, ::-1, ::-1])  # centred in y and z
    # y spans grid planes 8..24 and z 12..20 exactly; voxel boxes are closed, so the faces on
    # those planes fill the voxels on both sides (binvox: every voxel a triangle touches).
    assert grid[:, 7:25, 11:21].all() and grid.sum() == 32 * 18 * 10


@pytest.mark.parametrize("seed", range(4))
def test_rotated_boxes_and_cylinders(seed):
    rng = np.random.default_rng(seed)
    box = _rotated(trimesh.creation.box(rng.uniform(0.2, 1.0, 3)), seed)
    cyl = _rotated(trimesh.creation.cylinder(radius=rng.uniform(0.1, 0.5),
                                             height=rng.uniform(0.3, 1.5), sections=48), seed + 99)
    for mesh in (box, cyl):
        vox = _vox(mesh, 32)
        assert_agrees([mesh], vox, seed=seed, n_random=400)
        assert_surface_covered(mesh, vox)


def test_thin_plate():
    plate = _rotated(trimesh.creation.box((1.0, 0.01, 0.7)), 5)
    vox = _vox(plate, 32)
    assert_agrees([plate], vox, n_random=400)
    assert_surface_covered(plate, vox)
    assert_connected(vox.grid)
    # A plate far thinner than a voxel is one to three voxels thick, never a solid block.
    assert vox.grid.sum() < 3 * (32 * 32 * 0.7 * 1.5)


def test_thin_rod_thinner_than_a_voxel():
    # Radius 0.1 voxel at 32^3 over a length of 1 (the longest extent).
    rod = _rotated(trimesh.creation.cylinder(radius=0.1 / 32, height=1.0, sections=12), 7)
    vox = _vox(rod, 32)
    assert_agrees([rod], vox, n_random=400)
    assert_surface_covered(rod, vox)
    assert_connected(vox.grid)


def test_union_of_overlapping_closed_parts():
    parts = [trimesh.creation.box((1.0, 0.2, 0.6)),
             trimesh.creation.cylinder(radius=0.15, height=0.9, sections=40),
             trimesh.creation.icosphere(subdivisions=3, radius=0.3)]
    parts[1].apply_translation((0.3, 0.2, 0.0))
    parts[2].apply_translation((-0.35, 0.25, 0.1))
    parts = [_rotated(p, 3) for p in parts]
    union = trimesh.util.concatenate(parts)
    vox = _vox(union, 32)
    assert_agrees(parts, vox, n_random=400)
    assert_surface_covered(union, vox)
    assert_connected(vox.grid)


# ---------------------------------------------------------------------------------------------
# Robustness
# ---------------------------------------------------------------------------------------------

def test_open_box_keeps_its_shell():
    box = trimesh.creation.box((1.0, 1.0, 1.0))
    top = np.flatnonzero(box.triangles_center[:, 2] > 0.49)
    open_box = trimesh.Trimesh(box.vertices, np.delete(box.faces, top, axis=0), process=False)
    vox = _vox(open_box, 16)
    grid = vox.grid
    closed = _vox(box, 16).grid
    assert closed.all()
    # Shell: the bottom and four sides are filled; carving from above (and the flood fill,
    # which leaks through the open top) empties the inside, as in binvox.
    assert grid[:, :, 0].all() and grid[0].all() and grid[-1].all()
    assert grid[:, 0].all() and grid[:, -1].all()
    assert not grid[1:-1, 1:-1, 1:].any()


def test_enclosed_cavity_is_filled():
    # Six overlapping planks that wall in a box of air (a closed cabinet): as in binvox, the
    # air that no outside path reaches is filled.
    planks = []
    for axis in range(3):
        for side in (-1, 1):
            extents = np.full(3, 1.0)
            extents[axis] = 0.05
            plank = trimesh.creation.box(extents)
            plank.apply_translation(np.eye(3)[axis] * side * 0.475)
            planks.append(plank)
    cabinet = trimesh.util.concatenate(planks)
    vox = _vox(cabinet, 16)
    assert vox.grid.all()
    # With one plank missing, the air is reached from outside and stays empty.
    open_cabinet = trimesh.util.concatenate(planks[:-1])
    grid = _vox(open_cabinet, 16).grid
    assert not grid[2:-2, 2:-2, 2:-2].any()


def test_duplicated_faces_change_nothing(icosphere):
    doubled = np.concatenate([icosphere.faces, icosphere.faces[:, ::-1], icosphere.faces])
    a = voxelize_mesh(icosphere.vertices, icosphere.faces, 32)
    b = voxelize_mesh(icosphere.vertices, doubled, 32)
    np.testing.assert_array_equal(a.grid, b.grid)


def test_degenerate_triangles(icosphere):
    f = icosphere.faces
    degenerate = np.concatenate([f[:, [0, 0, 1]], f[:, [2, 2, 2]], f[:, [1, 0, 1]]])
    a = voxelize_mesh(icosphere.vertices, f, 32)
    b = voxelize_mesh(icosphere.vertices, np.concatenate([f, degenerate]), 32)
    np.testing.assert_array_equal(a.grid, b.grid)


def test_segment_only_mesh_is_a_connected_line():
    # Zero-area triangles along a diagonal segment: a 6-connected chain of voxels covering it.
    verts = np.array([[0.0, 0.0, 0.0], [1.0, 0.7, 0.3], [0.5, 0.35, 0.15]])
    vox = voxelize_mesh(verts, np.array([[0, 1, 1], [0, 2, 1]]), 32)
    assert_connected(vox.grid)
    t = np.linspace(0, 1, 5001)[:, None]
    idx = np.clip(np.floor((t * verts[1] - vox.translate) / vox.scale * 32).astype(int), 0, 31)
    assert vox.grid[tuple(idx.T)].all()
    assert vox.grid.sum() < 4 * 3 * 32


@pytest.mark.parametrize("vertices, faces", [
    (np.zeros((0, 3)), np.zeros((0, 3), int)),
    (np.eye(3), np.zeros((0, 3), int)),
    (np.eye(3), np.array([[0, 1, 3]])),
    (np.array([[0.0, 0, 0], [1, np.nan, 0], [0, 0, 1]]), np.array([[0, 1, 2]])),
    (np.ones((3, 3)), np.array([[0, 1, 2]])),  # every vertex in one point
])
def test_invalid_meshes_raise_value_error(vertices, faces):
    with pytest.raises(ValueError):
        voxelize_mesh(vertices, faces, 8)


@pytest.mark.parametrize("content", [b"", b"\x00\xff garbage \x13\x37" * 50, b"v 0 0 0\nv 1 0 0\n"])
def test_voxelize_file_bad_files(tmp_path, content):
    path = tmp_path / "model.obj"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="model.obj"):
        voxelize_file(path, 8)


# ---------------------------------------------------------------------------------------------
# Carving (binvox) against the flood fill; placement
# ---------------------------------------------------------------------------------------------

def _quad(axis: int, at: float, u: tuple[float, float], v: tuple[float, float]) -> np.ndarray:
    """The 4 corners of an axis-aligned rectangle in the plane ``x[axis] = at``, spanning ``u``
    and ``v`` along the next two axes (cyclically)."""
    corners = np.zeros((4, 3))
    corners[:, axis] = at
    corners[:, (axis + 1) % 3] = [u[0], u[1], u[1], u[0]]
    corners[:, (axis + 2) % 3] = [v[0], v[0], v[1], v[1]]
    return corners


def _mesh_of_quads(quads: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    vertices = np.concatenate(quads)
    faces = np.concatenate([np.array([[0, 1, 2], [0, 2, 3]]) + 4 * i for i in range(len(quads))])
    return vertices, faces


def _box_quads(lo: float, hi: float) -> list[np.ndarray]:
    return [_quad(axis, at, (lo, hi), (lo, hi)) for axis in range(3) for at in (lo, hi)]


# At 8^3 over the unit cube a voxel is 1/8. The window spans u in [2.5, 5.5] and v in [1.5, 6.5]
# voxels of its face, so the voxels whose closed box no part of that face touches are u = 3, 4
# and v = 2..5 (u = 2 and 5, v = 1 and 6 touch the frame).
WINDOW_U, WINDOW_V = (2.5 / 8, 5.5 / 8), (1.5 / 8, 6.5 / 8)


def _box_with_window(axis: int, side: int) -> tuple[np.ndarray, np.ndarray]:
    """The unit cube's surface with a rectangular window cut through its face normal to
    ``axis`` on ``side`` (0: low, 1: high); the face is four frame quads around the window."""
    quads = [q for i, q in enumerate(_box_quads(0.0, 1.0)) if i != 2 * axis + side]
    (u0, u1), (v0, v1) = WINDOW_U, WINDOW_V
    at = float(side)
    quads += [_quad(axis, at, (0.0, u0), (0.0, 1.0)), _quad(axis, at, (u1, 1.0), (0.0, 1.0)),
              _quad(axis, at, (u0, u1), (0.0, v0)), _quad(axis, at, (u0, u1), (v1, 1.0))]
    return _mesh_of_quads(quads)


def _along(axis: int, w: slice, u: slice, v: slice) -> tuple[slice, slice, slice]:
    """An [x, y, z] index with ``w`` along ``axis`` and ``u``, ``v`` along the next two axes."""
    index = [slice(None)] * 3
    index[axis], index[(axis + 1) % 3], index[(axis + 2) % 3] = w, u, v
    return tuple(index)


@pytest.mark.parametrize("axis", range(3))
@pytest.mark.parametrize("side", [0, 1])
def test_window_carves_only_its_line_of_sight(axis, side):
    vertices, faces = _box_with_window(axis, side)
    hole_u, hole_v = slice(3, 5), slice(2, 6)
    # Carving: the box's faces lie on the grid's outer planes, so the surface is the grid's
    # border layers less the window. Only lines through the window, normal to its face, reach
    # the inside; they run through the box up to the opposite face's layer. Every other line
    # meets a face first, so the rest is solid.
    expected = np.ones((8, 8, 8), bool)
    through = slice(0, 7) if side == 0 else slice(1, 8)
    expected[_along(axis, through, hole_u, hole_v)] = False
    carved = voxelize_mesh(vertices, faces, 8)
    np.testing.assert_array_equal(carved.grid, expected)
    # The flood fill leaks through the window: only the shell remains, less the window.
    shell = np.ones((8, 8, 8), bool)
    shell[1:-1, 1:-1, 1:-1] = False
    shell[_along(axis, slice(7 * side, 7 * side + 1), hole_u, hole_v)] = False
    np.testing.assert_array_equal(voxelize_mesh(vertices, faces, 8, fill="flood").grid, shell)
    # The surface alone is that shell too: the difference is the fill alone.
    translate, scale = voxelize.placement(vertices)
    np.testing.assert_array_equal(voxelize.surface_voxels(vertices, faces, 8, translate, scale),
                                  shell)


def test_box_in_a_box_cavity_is_filled():
    # Two closed surfaces: the air between them is walled in, so both fills make it solid.
    vertices, faces = _mesh_of_quads(_box_quads(0.0, 1.0) + _box_quads(0.35, 0.65))
    translate, scale = voxelize.placement(vertices)
    surface = voxelize.surface_voxels(vertices, faces, 10, translate, scale).astype(bool)
    # At 10^3 the inner faces lie in voxels 3 and 6: air between the boxes, and inside the inner.
    assert not surface[1:3, 1:-1, 1:-1].any()
    assert not surface[4:6, 4:6, 4:6].any()
    for fill in voxelize.FILLS:
        assert voxelize_mesh(vertices, faces, 10, fill=fill).grid.all(), fill


def test_tilted_torus_hole_is_an_outside_pocket_that_carving_fills():
    # A fat torus whose axis is the cube diagonal: no axis-aligned line passes through the
    # middle of its hole, so carving fills that part of the hole (binvox does the same); the
    # flood fill reaches it around the ring and leaves it empty. Both agree with trimesh, the
    # carved grid with the pocket allowance of ``cavities_in`` (walled in along all six axes).
    torus = trimesh.creation.torus(major_radius=1.0, minor_radius=0.7, major_sections=64,
                                   minor_sections=24)
    torus.apply_transform(trimesh.geometry.align_vectors([0, 0, 1], np.ones(3) / np.sqrt(3)))
    carved, flooded = _vox(torus, 32), voxelize_mesh(torus.vertices, torus.faces, 32, "flood")
    assert (carved.grid >= flooded.grid).all()
    pocket = carved.grid & ~flooded.grid
    assert 10 < pocket.sum() < 200
    # The pocket is air of the hole: outside the torus, around its centre (the grid's centre).
    assert not torus.contains(_centres(carved, np.argwhere(pocket))).any()
    assert np.abs(np.argwhere(pocket) - 15.5).max() < 8
    assert_agrees([torus], flooded, n_random=200)
    assert_agrees([torus], carved, n_random=200, cavities_in=torus)
    assert_surface_covered(torus, carved)


def test_corner_placement_touches_the_low_corner():
    box = trimesh.creation.box((2.0, 1.0, 0.5))
    box.apply_translation((10.0, -3.0, 7.0))
    vox = voxelize_mesh(box.vertices, box.faces, 32, placement="corner")
    assert vox.scale == pytest.approx(2.0)
    np.testing.assert_allclose(vox.translate, box.bounds[0])  # (9, -3.5, 6.75)
    grid = vox.grid
    # x spans grid planes 0..32, y 0..16, z 0..8; faces on planes fill both neighbours.
    assert grid[:, :17, :9].all() and grid.sum() == 32 * 17 * 9
    # "centred" is the same cube, centred on y and z (test_placement_centred_and_touching),
    # and stays the default.
    centred = voxelize_mesh(box.vertices, box.faces, 32, placement="centred")
    assert centred.scale == vox.scale
    np.testing.assert_allclose(centred.translate, (9.0, -4.0, 6.0))
    np.testing.assert_array_equal(centred.grid, _vox(box, 32).grid)


@pytest.mark.parametrize("seed", range(3))
def test_corner_placement_of_rotated_meshes(seed, icosphere):
    mesh = _rotated(trimesh.creation.box((1.0, 0.6, 0.3)), seed)
    mesh.apply_translation((seed, -2.0 * seed, 0.5))
    translate, scale = voxelize.placement(mesh.vertices, "corner")
    np.testing.assert_allclose(translate, mesh.bounds[0])
    assert scale == pytest.approx(mesh.extents.max())
    assert voxelize.placement(mesh.vertices) == voxelize.placement(mesh.vertices, "centred")
    np.testing.assert_allclose(voxelize.placement(mesh.vertices)[0],
                               mesh.bounds.mean(axis=0) - scale / 2)
    vox = voxelize_mesh(mesh.vertices, mesh.faces, 32, placement="corner")
    assert vox.translate == translate and vox.scale == scale
    grid = vox.grid
    longest = int(np.argmax(mesh.extents))
    for axis in range(3):
        assert np.take(grid, 0, axis=axis).any(), axis
    assert np.take(grid, 31, axis=longest).any()
    assert_agrees([mesh], vox, seed=seed, n_random=200)
    assert_surface_covered(mesh, vox)


def test_voxelize_file_passes_fill_and_placement(tmp_path):
    vertices, faces = _box_with_window(2, 1)
    path = tmp_path / "window.obj"
    trimesh.Trimesh(vertices, faces, process=False).export(path)
    for fill in voxelize.FILLS:
        for where in voxelize.PLACEMENTS:
            vox = voxelize_file(path, 8, fill=fill, placement=where)
            ref = voxelize_mesh(vertices, faces, 8, fill, where)
            np.testing.assert_array_equal(vox.grid, ref.grid)
            np.testing.assert_allclose(vox.translate, ref.translate)


def test_fill_and_placement_names():
    assert voxelize.FILLS == ("carve", "flood")
    assert voxelize.PLACEMENTS == ("centred", "corner")


@pytest.mark.parametrize("kwargs", [{"fill": "binvox"}, {"fill": "Carve"}, {"fill": ""},
                                    {"placement": "centered"}, {"placement": "center"},
                                    {"placement": "min"}])
def test_unknown_fill_or_placement_raises(tmp_path, kwargs):
    vertices, faces = _box_with_window(0, 0)
    with pytest.raises(ValueError, match="unknown"):
        voxelize_mesh(vertices, faces, 8, **kwargs)
    path = tmp_path / "window.obj"
    trimesh.Trimesh(vertices, faces, process=False).export(path)
    with pytest.raises(ValueError, match="unknown"):
        voxelize_file(path, 8, **kwargs)
    if "placement" in kwargs:
        with pytest.raises(ValueError, match="unknown"):
            voxelize.placement(vertices, kwargs["placement"])


# ---------------------------------------------------------------------------------------------
# The voxelize command on v1 / v2 trees
# ---------------------------------------------------------------------------------------------

def _write_v1(root, synset, model_id, mesh):
    path = root / synset / model_id / "model.obj"
    path.parent.mkdir(parents=True)
    mesh.export(path)
    return path


def _write_v2(root, synset, model_id, mesh):
    path = root / synset / model_id / "models" / "model_normalized.obj"
    path.parent.mkdir(parents=True)
    mesh.export(path)
    return path


def _small_mesh(i: int) -> trimesh.Trimesh:
    mesh = trimesh.creation.box((1.0, 0.5 + 0.1 * i, 0.3))
    mesh.apply_translation((i, 0.0, -i))
    return mesh


def test_run_voxelize_v1_and_v2_trees(tmp_path):
    shapes, out = tmp_path / "shapes", tmp_path / "vox"
    v1 = trimesh.creation.box((4.0, 2.0, 1.0))
    v1.apply_translation((100.0, 50.0, -20.0))  # v1: the model's own, unnormalized frame
    _write_v1(shapes, "02691156", "plane_a", v1)
    _write_v2(shapes, "03001627", "chair_b", trimesh.creation.icosphere(2, radius=0.5))
    assert run_voxelize(VoxelizeConfig(shapes, out, res=16)) == 0

    a = binvox.read_binvox(r2n2.voxel_path(out, "02691156", "plane_a"))
    assert a.dims == (16, 16, 16) and a.scale == pytest.approx(4.0)
    np.testing.assert_allclose(a.translate, (98.0, 48.0, -22.0))
    assert a.grid.sum() == 16 * 10 * 6  # faces on grid planes fill both neighbours
    b = binvox.read_binvox(out / "03001627" / "chair_b" / "model.binvox")
    assert b.scale == pytest.approx(1.0, rel=0.01) and 0.4 < b.grid.mean() < 0.7

    # Rerun: nothing to do, nothing rewritten.
    stamp = os.stat(r2n2.voxel_path(out, "02691156", "plane_a")).st_mtime_ns
    assert run_voxelize(VoxelizeConfig(shapes, out, res=16)) == 0
    assert os.stat(r2n2.voxel_path(out, "02691156", "plane_a")).st_mtime_ns == stamp
    # Another resolution into the same folder: grids are redone, never mixed.
    assert run_voxelize(VoxelizeConfig(shapes, out, res=8)) == 0
    assert binvox.read_dims(r2n2.voxel_path(out, "02691156", "plane_a")) == (8, 8, 8)


def test_run_voxelize_synset_filter(tmp_path):
    shapes, out = tmp_path / "shapes", tmp_path / "vox"
    _write_v2(shapes, "02691156", "a", _small_mesh(0))
    _write_v2(shapes, "03001627", "b", _small_mesh(1))
    assert run_voxelize(VoxelizeConfig(shapes, out, res=8, synsets=["03001627"])) == 0
    assert (out / "03001627" / "b" / "model.binvox").is_file()
    assert not (out / "02691156").exists()


@pytest.mark.parametrize("workers", [1, 2])
def test_run_voxelize_bad_models_are_skipped(tmp_path, caplog, workers):
    shapes, out = tmp_path / "shapes", tmp_path / "vox"
    for i in range(3):
        _write_v2(shapes, "04379243", f"good{i}", _small_mesh(i))
    empty = _write_v1(shapes, "04379243", "empty", _small_mesh(0))
    empty.write_bytes(b"")
    garbage = _write_v2(shapes, "04379243", "garbage", _small_mesh(0))
    garbage.write_bytes(os.urandom(3000))
    points_only = _write_v1(shapes, "04379243", "points", _small_mesh(0))
    points_only.write_text("v 0 0 0\nv 1 1 1\nv 2 0 1\n")
    with caplog.at_level(logging.ERROR, logger="synth_render.voxelize"):
        code = run_voxelize(VoxelizeConfig(shapes, out, res=8, workers=workers))
    assert code == 1
    for i in range(3):
        assert binvox.read_binvox(out / "04379243" / f"good{i}" / "model.binvox").grid.any()
    for bad in ("empty", "garbage", "points"):
        assert not (out / "04379243" / bad / "model.binvox").exists()
        assert any(f"04379243/{bad}" in r.getMessage() for r in caplog.records)


_VOXELIZE_ONE = voxelize._voxelize_one


def _die_on_crash_marker(job, *opts):
    """Stands in for the worker function: a hard crash (no exception) for one model."""
    if "crash" in str(job.mesh):
        os._exit(3)
    return _VOXELIZE_ONE(job, *opts)


def test_run_voxelize_survives_a_dying_worker(tmp_path, monkeypatch, caplog):
    shapes, out = tmp_path / "shapes", tmp_path / "vox"
    for i in range(4):
        _write_v2(shapes, "04530566", f"boat{i}", _small_mesh(i))
    _write_v2(shapes, "04530566", "crash", _small_mesh(0))
    monkeypatch.setattr(voxelize, "_voxelize_one", _die_on_crash_marker)
    with caplog.at_level(logging.ERROR, logger="synth_render.voxelize"):
        assert run_voxelize(VoxelizeConfig(shapes, out, res=8, workers=2)) == 1
    assert sorted(p.parent.name for p in out.rglob("model.binvox")) == [
        f"boat{i}" for i in range(4)]
    assert any("04530566/crash" in r.getMessage() for r in caplog.records)


def test_run_voxelize_shards_partition(tmp_path):
    shapes = tmp_path / "shapes"
    keys = set()
    for i in range(8):
        _write_v2(shapes, "02958343", f"car{i}", _small_mesh(i % 3))
        keys.add(f"02958343/car{i}")
    done = []
    for k in range(2):
        out = tmp_path / f"vox{k}"
        assert run_voxelize(VoxelizeConfig(shapes, out, res=8, shard=(k, 2))) == 0
        done.append({f"{p.parent.parent.name}/{p.parent.name}" for p in out.rglob("model.binvox")})
    assert done[0].isdisjoint(done[1]) and done[0] | done[1] == keys
    assert done[0] and done[1]  # 8 keys: both shards get some (fixed by the stable hash)


def test_cli_voxelize(tmp_path):
    from synth_render.cli import main

    shapes, out = tmp_path / "shapes", tmp_path / "vox"
    _write_v2(shapes, "02828884", "bench0", _small_mesh(2))
    assert main(["voxelize", "--shapes", str(shapes), "--out", str(out), "--res", "8"]) == 0
    assert binvox.read_binvox(out / "02828884" / "bench0" / "model.binvox").dims == (8, 8, 8)
    # bad input: one clear error line and exit 2, not a traceback
    for bad in (["--shapes", str(tmp_path / "missing")], ["--shard", "3/2"]):
        args = ["voxelize", "--shapes", str(shapes), "--out", str(out), *bad]
        assert main(args) == 2


# ---------------------------------------------------------------------------------------------
# The procedural library (when present): one shape per class
# ---------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_procedural_shapes_agree():
    procedural = pytest.importorskip("synth_render.procedural")
    if not hasattr(procedural, "generate_shape"):
        pytest.skip("synth_render.procedural.generate_shape not written yet")
    from synth_render.taxonomy import SYNSET_TO_LABEL

    for i, synset in enumerate(sorted(SYNSET_TO_LABEL)):
        parts = procedural.generate_shape(synset, np.random.default_rng(i))
        meshes = [trimesh.Trimesh(p.vertices, p.faces, process=False) for p in parts]
        union = trimesh.util.concatenate(meshes)
        vox = _vox(union, 32)
        closed = [m for m in meshes if m.is_watertight]
        assert len(closed) == len(meshes), f"{synset}: some parts are not closed"
        assert_agrees(closed, vox, seed=i, n_random=100, cavities_in=union)
        assert_surface_covered(union, vox)



def test_voxelize_command_with_corner_placement_makes_an_open_mesh_solid(tmp_path):
    """``voxelize --placement corner`` on a box with an open window (a car's open window):
    solid but for the window's line of sight, where a flood fill would leave the shell."""
    from synth_render.cli import main

    vertices, faces = _box_with_window(0, 1)
    path = tmp_path / "shapes" / "02958343" / "open" / "models" / "model_normalized.obj"
    path.parent.mkdir(parents=True)
    trimesh.Trimesh(vertices - 0.5, faces, process=False).export(path)
    out = tmp_path / "vox"
    assert main(["voxelize", "--shapes", str(tmp_path / "shapes"), "--out", str(out),
                 "--res", "8", "--placement", "corner"]) == 0
    raw = binvox.read_binvox(r2n2.voxel_path(out, "02958343", "open"))
    assert raw.translate == pytest.approx((-0.5, -0.5, -0.5))  # the bounding-box minimum
    assert raw.grid.sum() == 8 ** 3 - 7 * 2 * 4  # all but the window's line of sight
    canonical = r2n2.read_voxels(r2n2.voxel_path(out, "02958343", "open")).grid
    expected = np.ones((8, 8, 8), bool)
    expected[_along(0, slice(1, 8), slice(3, 5), slice(2, 6))] = False
    np.testing.assert_array_equal(canonical, expected)
