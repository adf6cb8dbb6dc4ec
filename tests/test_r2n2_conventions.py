"""3D-R2N2's conventions in both directions, against files written by hand in this test.

The facts (measured on real 3D-R2N2 files, not in this repository): ShapeNetVox32 grids are
in ShapeNet v1's frame, front +X, and for an n³ grid ``g_v2[i, j, k] = g_v1[n-1-k, j, i]``; a
cube at ``t`` with side ``s`` in v2 has ``translate_v1 = (-t_z - s, t_y, t_x)``; a metadata
azimuth ``a`` is the canonical viewpoint ``90 - a`` (mod 360). The formulas are written out
here, not imported, and the shape has no mirror symmetry (an L with unequal arms and a bump on
one side), so a reader that mirrors or turns it by mistake cannot pass.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from synth_render import binvox, frames, r2n2, shapenet
from synth_render.cli import main as synth_main
from synth_render.config import VoxelizeConfig
from synth_render.voxelize import run_voxelize, voxelize_mesh

N = 8
T_V2, SIDE = (-0.5, -0.25, -0.625), 1.0
T_V1 = (-T_V2[2] - SIDE, T_V2[1], T_V2[0])  # (-t_z - s, t_y, t_x)
CANONICAL_VIEWS = [r2n2.View(30.0, 25.5, 0.8), r2n2.View(300.0, 27.0, 0.7)]
KEY = ("03001627", "lshape")


def l_shape_v2() -> np.ndarray:
    """The canonical grid: a long arm along x, a shorter one up y at low x, a bump at +z."""
    g = np.zeros((N, N, N), bool)
    g[1:7, 1, 2] = True  # long arm, 6 voxels along x
    g[1, 1:5, 2] = True  # short arm, 4 voxels up y
    g[5, 1, 3] = True  # the bump, on the +z side near the long arm's end
    return g


def by_hand_v1(g2: np.ndarray) -> np.ndarray:
    g1 = np.zeros_like(g2)
    for i in range(N):
        for j in range(N):
            for k in range(N):
                g1[i, j, k] = g2[k, j, N - 1 - i]
    return g1


def by_hand_binvox(g1: np.ndarray, translate, scale) -> bytes:
    """binvox bytes: header, then (value, count) runs over x outermost, z, then y fastest."""
    header = (f"#binvox 1\ndim {N} {N} {N}\ntranslate {translate[0]:g} {translate[1]:g} "
              f"{translate[2]:g}\nscale {scale:g}\ndata\n").encode()
    flat = [int(g1[x, y, z]) for x in range(N) for z in range(N) for y in range(N)]
    runs, value, count = [], flat[0], 0
    for v in flat:
        if v == value and count < 255:
            count += 1
        else:
            runs += [value, count]
            value, count = v, 1
    runs += [value, count]
    return header + bytes(runs)


def by_hand_metadata(views) -> str:
    lines = [f"{(90.0 - v.azimuth) % 360.0:.6f} {v.elevation:.6f} 0 {v.distance_ratio:.6f} 25"
             for v in views]
    return "\n".join(lines) + "\n"


def write_hand_made_tree(root) -> None:
    vdir = root / "voxels" / KEY[0] / KEY[1]
    vdir.mkdir(parents=True)
    (vdir / "model.binvox").write_bytes(by_hand_binvox(by_hand_v1(l_shape_v2()), T_V1, SIDE))
    rdir = root / "renders" / KEY[0] / KEY[1] / "rendering"
    rdir.mkdir(parents=True)
    (rdir / "rendering_metadata.txt").write_text(by_hand_metadata(CANONICAL_VIEWS))
    (rdir / "renderings.txt").write_text("00.png\n01.png\n")


# ---------------------------------------------------------------------------------------------
# Readers and writers
# ---------------------------------------------------------------------------------------------

def test_the_shape_has_no_mirror_symmetry():
    g = l_shape_v2()
    for axis in range(3):
        assert not np.array_equal(g, np.flip(g, axis))
    for k in (1, 2, 3):
        assert not np.array_equal(g, np.rot90(g, k, axes=(0, 2)))


def test_readers_give_the_canonical_grid_and_views(tmp_path):
    write_hand_made_tree(tmp_path)
    vox = r2n2.read_voxels(r2n2.voxel_path(tmp_path / "voxels", *KEY))
    np.testing.assert_array_equal(vox.grid, l_shape_v2())
    assert vox.translate == pytest.approx(T_V2) and vox.scale == SIDE
    views = r2n2.read_metadata(r2n2.rendering_dir(tmp_path / "renders", *KEY))
    np.testing.assert_allclose([(v.azimuth, v.elevation, v.distance_ratio) for v in views],
                               [(v.azimuth, v.elevation, v.distance_ratio)
                                for v in CANONICAL_VIEWS], atol=1e-6)
    # Without a marker or a file only the project writes, this is a real R2N2 tree.
    assert r2n2.tree_conventions(tmp_path / "voxels", r2n2.VOXELS)["source"] == "3D-R2N2"


def test_writers_give_exactly_the_hand_made_files(tmp_path):
    path = tmp_path / "model.binvox"
    r2n2.write_voxels(path, binvox.Voxels(l_shape_v2(), T_V2, SIDE))
    assert path.read_bytes() == by_hand_binvox(by_hand_v1(l_shape_v2()), T_V1, SIDE)
    r2n2.write_index(tmp_path, CANONICAL_VIEWS)
    assert (tmp_path / r2n2.METADATA_TXT).read_text() == by_hand_metadata(CANONICAL_VIEWS)


def test_round_trip_through_the_r2n2_frame(tmp_path):
    rng = np.random.default_rng(3)
    grid = rng.random((N, N, N)) < 0.3
    path = tmp_path / "g.binvox"
    r2n2.write_voxels(path, binvox.Voxels(grid, (0.1, -0.2, 0.3), 0.75))
    back = r2n2.read_voxels(path)
    np.testing.assert_array_equal(back.grid, grid)
    assert back.translate == pytest.approx((0.1, -0.2, 0.3)) and back.scale == 0.75
    for a in (0.0, 12.5, 90.0, 271.0):
        assert r2n2.r2n2_azimuth(r2n2.r2n2_azimuth(a)) == pytest.approx(a)


def test_translate_turns_with_the_grid():
    """Each voxel's centre, mapped point-wise from v1 to v2, lands in the voxel the grid
    mapping puts it in: the grid formula, the point formula and the translate agree."""
    g2 = l_shape_v2()
    g1 = by_hand_v1(g2)
    t1 = np.array(frames.canonical_to_v1_translate(T_V2, SIDE))
    assert tuple(t1) == pytest.approx(T_V1)
    pitch = SIDE / N
    for i, j, k in zip(*np.nonzero(g1), strict=True):
        centre_v1 = t1 + pitch * (np.array([i, j, k]) + 0.5)
        x, y, z = centre_v1
        centre_v2 = np.array([z, y, -x])  # x_v2 = z_v1, z_v2 = -x_v1
        index_v2 = np.floor((centre_v2 - np.array(T_V2)) / pitch).astype(int)
        assert g2[tuple(index_v2)]
        np.testing.assert_allclose(frames.v1_to_canonical_points(centre_v1), centre_v2)


def test_viewpoint_mapping_is_r2n2s():
    # R2N2 azimuth 0 looks at the front (v1: +X), which the canonical convention calls 90.
    assert r2n2.r2n2_azimuth(0.0) == 90.0
    front = r2n2.View(90.0, 0.0, 1.0).location_shapenet()
    np.testing.assert_allclose(front / np.linalg.norm(front), [0, 0, -1], atol=1e-12)


# ---------------------------------------------------------------------------------------------
# Tree markers, old trees and their conversion
# ---------------------------------------------------------------------------------------------

def _old_tree(root):
    """A data set as earlier versions wrote it: grids and azimuths in the canonical frame."""
    vdir = root / "voxels" / KEY[0] / KEY[1]
    vdir.mkdir(parents=True)
    binvox.write_binvox(vdir / "model.binvox", l_shape_v2(), T_V2, SIDE)
    rdir = root / "renders_synthetic" / KEY[0] / KEY[1] / "rendering"
    rdir.mkdir(parents=True)
    old_lines = [f"{v.azimuth:.6f} {v.elevation:.6f} 0 {v.distance_ratio:.6f} 25"
                 for v in CANONICAL_VIEWS]
    (rdir / "rendering_metadata.txt").write_text("\n".join(old_lines) + "\n")
    (rdir / "renderings.txt").write_text("00.png\n01.png\n")
    (root / "renders_synthetic" / "render_summary.json").write_text("{}")
    (root / "splits.json").write_text("{}")


def test_an_old_tree_is_refused_with_the_conversion_command(tmp_path):
    _old_tree(tmp_path)
    for tree, kind in ((tmp_path / "voxels", r2n2.VOXELS),
                       (tmp_path / "renders_synthetic", r2n2.RENDERS)):
        with pytest.raises(r2n2.TreeConventionError, match="convert-r2n2"):
            r2n2.tree_conventions(tree, kind)
    from backend.data.datasets import RenderVoxelDataset

    with pytest.raises(ValueError, match="convert-r2n2"):
        RenderVoxelDataset(tmp_path / "renders_synthetic", tmp_path / "voxels", ["/".join(KEY)])


def test_conversion_makes_an_old_tree_read_as_before(tmp_path):
    _old_tree(tmp_path)
    assert synth_main(["convert-r2n2", str(tmp_path)]) == 0
    vox_tree, render_tree = tmp_path / "voxels", tmp_path / "renders_synthetic"
    assert r2n2.tree_conventions(vox_tree, r2n2.VOXELS)["fill"] == "flood"
    vox = r2n2.read_voxels(r2n2.voxel_path(vox_tree, *KEY))
    np.testing.assert_array_equal(vox.grid, l_shape_v2())
    assert r2n2.voxel_path(vox_tree, *KEY).read_bytes() == by_hand_binvox(
        by_hand_v1(l_shape_v2()), T_V1, SIDE)
    meta = r2n2.rendering_dir(render_tree, *KEY) / r2n2.METADATA_TXT
    assert meta.read_text() == by_hand_metadata(CANONICAL_VIEWS)
    # A second run changes nothing.
    assert synth_main(["convert-r2n2", str(tmp_path)]) == 0
    assert meta.read_text() == by_hand_metadata(CANONICAL_VIEWS)


def test_an_interrupted_conversion_finishes_without_converting_twice(tmp_path):
    from synth_render import convert_tree

    _old_tree(tmp_path)
    tree = tmp_path / "renders_synthetic"
    meta = r2n2.rendering_dir(tree, *KEY) / r2n2.METADATA_TXT
    # Killed after the journal entry, before the new file replaced the old one.
    new = meta.with_name(meta.name + convert_tree.NEW_SUFFIX)
    new.write_text(by_hand_metadata(CANONICAL_VIEWS))
    (tree / convert_tree.JOURNAL).write_text("/".join(KEY) + "\n")
    with pytest.raises(r2n2.TreeConventionError):  # still counts as old meanwhile
        r2n2.tree_conventions(tree, r2n2.RENDERS)
    assert convert_tree.convert_tree(tree, r2n2.RENDERS) == (0, 0)  # none converted again
    assert meta.read_text() == by_hand_metadata(CANONICAL_VIEWS) and not new.exists()
    assert not (tree / convert_tree.JOURNAL).exists()


def test_a_real_tree_is_not_converted(tmp_path):
    write_hand_made_tree(tmp_path)
    assert synth_main(["convert-r2n2", str(tmp_path / "voxels")]) == 2
    np.testing.assert_array_equal(
        r2n2.read_voxels(r2n2.voxel_path(tmp_path / "voxels", *KEY)).grid, l_shape_v2())


# ---------------------------------------------------------------------------------------------
# The voxelize command and ShapeNet v1 meshes
# ---------------------------------------------------------------------------------------------

def _l_mesh_parts() -> list[shapenet.Part]:
    """The L-shape's voxels as a mesh of closed boxes (canonical frame, the grid's placement)."""
    parts, pitch = [], SIDE / N
    cube_v = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], float)
    cube_f = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                       [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
    for idx in zip(*np.nonzero(l_shape_v2()), strict=True):
        lo = np.array(T_V2) + pitch * np.array(idx)
        parts.append(shapenet.Part(lo + pitch * (0.1 + 0.8 * cube_v), cube_f))
    return parts


def _as_v1(parts):
    """Parts turned into ShapeNet v1's frame by hand: x1 = -z2, y1 = y2, z1 = x2."""
    return [shapenet.Part(np.stack([-p.vertices[:, 2], p.vertices[:, 1], p.vertices[:, 0]], 1),
                          p.faces) for p in parts]


def test_voxelize_writes_r2n2_grids_and_v1_meshes_match_v2(tmp_path):
    parts = _l_mesh_parts()
    shapenet.write_v2_model(tmp_path / "v2", *KEY, parts)
    v1_obj = tmp_path / "v1" / KEY[0] / KEY[1] / shapenet.V1_MESH
    shapenet.write_obj(v1_obj, _as_v1(parts))
    (ref,) = shapenet.find_models(tmp_path / "v1")
    assert ref.frame == frames.SHAPENET_V1
    grids = {}
    for tree in ("v1", "v2"):
        out = tmp_path / f"vox_{tree}"
        assert run_voxelize(VoxelizeConfig(tmp_path / tree, out, res=N)) == 0
        marker = json.loads((out / r2n2.CONVENTIONS_FILE).read_text())
        assert marker["frame"] == frames.SHAPENET_V1 and marker["fill"] == "carve"
        grids[tree] = r2n2.read_voxels(r2n2.voxel_path(out, *KEY)).grid
        raw = binvox.read_binvox(r2n2.voxel_path(out, *KEY)).grid
        np.testing.assert_array_equal(raw, by_hand_v1(grids[tree]))
    np.testing.assert_array_equal(grids["v1"], grids["v2"])
    # The v2 mesh is normalized, the L keeps its shape: the canonical grid is the L's.
    np.testing.assert_array_equal(
        grids["v2"], voxelize_mesh(shapenet.load_mesh(tmp_path / "v2" / KEY[0] / KEY[1] /
                                                      shapenet.V2_MESH).vertices,
                                   shapenet.load_mesh(tmp_path / "v2" / KEY[0] / KEY[1] /
                                                      shapenet.V2_MESH).faces, N).grid)


def test_corner_placement_applies_in_the_written_frame(tmp_path):
    shapenet.write_v2_model(tmp_path / "shapes", *KEY, _l_mesh_parts())
    out = tmp_path / "vox"
    assert run_voxelize(VoxelizeConfig(tmp_path / "shapes", out, res=N,
                                       placement="corner")) == 0
    raw = binvox.read_binvox(r2n2.voxel_path(out, *KEY))
    mesh = shapenet.load_mesh(tmp_path / "shapes" / KEY[0] / KEY[1] / shapenet.V2_MESH)
    v1 = frames.canonical_to_v1_points(mesh.vertices)
    assert raw.translate == pytest.approx(tuple(v1.min(axis=0)), abs=1e-6)
    for axis in range(3):  # the object touches the low corner of the file's grid
        assert np.moveaxis(raw.grid, axis, 0)[0].any()
    # Mixing placements in one tree is refused.
    with pytest.raises(r2n2.TreeConventionError, match="placement"):
        run_voxelize(VoxelizeConfig(tmp_path / "shapes", out, res=N))


def test_the_renderer_turns_v1_meshes_front_to_the_canonical_front():
    from synth_render.render.worker import canonical_turn_blender

    turn = canonical_turn_blender(frames.SHAPENET_V1)
    v1_front_blender = r2n2.shapenet_to_blender([1.0, 0.0, 0.0])  # v1's front, +X
    canonical_front_blender = r2n2.shapenet_to_blender([0.0, 0.0, -1.0])
    np.testing.assert_allclose(turn @ v1_front_blender, canonical_front_blender, atol=1e-12)
    np.testing.assert_allclose(turn @ [0, 0, 1.0], [0, 0, 1.0], atol=1e-12)  # up stays up
    np.testing.assert_allclose(canonical_turn_blender(frames.CANONICAL), np.eye(3))


def test_an_unmarked_tree_of_unknown_origin_is_not_written_into(tmp_path):
    """No marker and no trace of this project: an old standalone ``voxelize --out`` tree or
    real data. Resuming into it could mix conventions, so the user says which it is."""
    write_hand_made_tree(tmp_path)
    shapenet.write_v2_model(tmp_path / "shapes", *KEY, _l_mesh_parts())
    cfg = VoxelizeConfig(tmp_path / "shapes", tmp_path / "voxels", res=N)
    with pytest.raises(r2n2.TreeConventionError, match="--assume-old .*--mark-real"):
        run_voxelize(cfg)
    assert synth_main(["convert-r2n2", "--mark-real", str(tmp_path / "voxels")]) == 0
    assert r2n2.tree_conventions(tmp_path / "voxels", r2n2.VOXELS)["fill"] == "carve"
    assert run_voxelize(cfg) == 0  # now a marked real tree: resumed, nothing redone
    np.testing.assert_array_equal(
        r2n2.read_voxels(r2n2.voxel_path(tmp_path / "voxels", *KEY)).grid, l_shape_v2())


def test_a_real_tree_beside_a_split_file_can_be_marked_real(tmp_path):
    write_hand_made_tree(tmp_path)
    (tmp_path / "splits.json").write_text("{}")  # arranged for `backend train --data`
    with pytest.raises(r2n2.TreeConventionError, match="--mark-real"):
        r2n2.tree_conventions(tmp_path / "voxels", r2n2.VOXELS)
    assert synth_main(["convert-r2n2", "--mark-real", str(tmp_path)]) == 0
    assert r2n2.tree_conventions(tmp_path / "renders", r2n2.RENDERS)["kind"] == r2n2.RENDERS
    np.testing.assert_array_equal(  # bytes untouched: read as R2N2 data
        r2n2.read_voxels(r2n2.voxel_path(tmp_path / "voxels", *KEY)).grid, l_shape_v2())


def test_a_torn_journal_line_and_an_unreadable_file_do_not_stop_a_conversion(tmp_path):
    from synth_render import convert_tree

    _old_tree(tmp_path)
    tree = tmp_path / "voxels"
    broken = r2n2.voxel_path(tree, KEY[0], "broken")
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not binvox")
    (tree / convert_tree.JOURNAL).write_text("0300")  # a key cut short by a crash
    assert synth_main(["convert-r2n2", str(tree)]) == 1  # the unreadable file is reported
    np.testing.assert_array_equal(
        r2n2.read_voxels(r2n2.voxel_path(tree, *KEY)).grid, l_shape_v2())
    assert broken.read_bytes() == b"not binvox"  # left as it was
    assert r2n2.read_marker(tree)["fill"] == "flood"


def test_a_rebuild_of_a_converted_data_set_keeps_its_fill(tmp_path):
    from backend.data.build import _voxel_fill

    _old_tree(tmp_path)
    assert _voxel_fill(tmp_path / "voxels") == "carve"  # unmarked (refused later anyway)
    assert synth_main(["convert-r2n2", str(tmp_path)]) == 0
    assert _voxel_fill(tmp_path / "voxels") == "flood"


def test_shards_claiming_one_fresh_tree_at_once_agree(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    roots = [tmp_path / f"t{i}" for i in range(20)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda r: r2n2.claim_tree(r, r2n2.RENDERS), roots * 4))
    for root in roots:
        assert r2n2.read_marker(root)["kind"] == r2n2.RENDERS
        assert [p.name for p in root.iterdir()] == [r2n2.CONVENTIONS_FILE]
