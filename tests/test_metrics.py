"""Metrics against hand-computed cases, and voxel -> mesh placement and orientation."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import trimesh

from backend.core import meshing, metrics
from synth_render.voxelize import voxelize_mesh

# --------------------------------------------------------------------------- IoU and AP


def test_voxel_iou_of_two_small_grids():
    a = np.zeros((4, 4, 4))
    b = np.zeros((4, 4, 4))
    a[0, 0, :3] = [0.9, 0.6, 0.2]  # two voxels at threshold 0.5, three at 0.1
    b[0, 0, 1:3] = 1  # overlap at 0.5: one voxel of a union of three
    assert metrics.voxel_iou(a, b, 0.5) == pytest.approx(1 / 3)
    assert metrics.voxel_iou(a, b, 0.1) == pytest.approx(2 / 3)
    assert metrics.voxel_iou(b, b, 0.5) == 1.0
    batch = metrics.voxel_iou(np.stack([a, b]), np.stack([b, b]), 0.5)
    np.testing.assert_allclose(batch, [1 / 3, 1.0])


def test_iou_threshold_is_inclusive_and_empty_grids_agree():
    a = np.full((2, 2, 2), 0.5)
    assert metrics.voxel_iou(a, np.ones((2, 2, 2)), 0.5) == 1.0
    assert metrics.voxel_iou(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)), 0.5) == 1.0


def test_average_precision_six_elements_by_hand():
    # Ranked: 1 0 1 1 0 0. Precision at each true positive: 1/1, 2/3, 3/4; AP = their mean.
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4]).reshape(1, 6)
    labels = np.array([1, 0, 1, 1, 0, 0]).reshape(1, 6)
    expected = (1 + 2 / 3 + 3 / 4) / 3  # 0.80556
    assert metrics.average_precision(scores, labels)[0] == pytest.approx(expected)
    # Order of the elements must not matter.
    perm = [3, 0, 5, 1, 4, 2]
    assert metrics.average_precision(scores[:, perm], labels[:, perm])[0] == \
        pytest.approx(expected)


def test_average_precision_ties_form_one_threshold():
    # sklearn: thresholds 0.9 (P=1, R=1/2) and 0.8 (tie of a 0 and a 1: P=2/3, R=1):
    # AP = 1/2 * 1 + 1/2 * 2/3 = 5/6, whatever the order of the tied elements.
    for labels in ([1, 0, 1, 0], [1, 1, 0, 0]):
        scores = np.array([[0.9, 0.8, 0.8, 0.3]])
        assert metrics.average_precision(scores, np.array([labels]))[0] == \
            pytest.approx(5 / 6)


def test_average_precision_perfect_and_grid_shapes():
    gt = np.zeros((4, 4, 4))
    gt[1:3, 1:3, 1:3] = 1
    assert metrics.average_precision(gt * 0.8 + 0.1, gt) == pytest.approx(1.0)
    assert math.isnan(metrics.average_precision(gt, np.zeros_like(gt)))


# --------------------------------------------------------------------------- F-score


def test_fscore_on_points_with_known_distances():
    gt = np.array([[0.0, 0, 0], [1, 0, 0], [2, 0, 0]])
    pred = np.array([[0.0, 0, 0.005]])  # within tau of the first GT point only
    f = metrics.fscore(pred, gt, tau=0.01)
    assert f["precision"] == 1.0 and f["recall"] == pytest.approx(1 / 3)
    assert f["fscore"] == pytest.approx(2 * (1 / 3) / (1 + 1 / 3))  # 0.5
    far = metrics.fscore(pred + [0, 0, 0.02], gt, tau=0.01)
    assert far["fscore"] == 0.0
    assert metrics.fscore(np.zeros((0, 3)), gt)["fscore"] == 0.0


def test_surface_fscore_perfect_shifted_and_empty():
    gt = np.zeros((32, 32, 32))
    gt[6:26, 10:20, 12:20] = 1
    assert metrics.surface_fscore(gt, gt, 0.5, n_points=2048)["fscore"] > 0.99
    shifted = metrics.surface_fscore(np.roll(gt, 3, axis=0), gt, 0.5, n_points=2048)
    # Shifting the 20x10x8 box by 3 voxels along X leaves 17/20 of its four sides in place
    # (612 of 880 voxel faces); the rest moves beyond 1 %.
    assert shifted["fscore"] == pytest.approx(612 / 880, abs=0.04)
    empty = metrics.surface_fscore(np.zeros_like(gt), gt, 0.5, n_points=256)
    assert empty["fscore"] == 0.0


# --------------------------------------------------------------------------- viewpoint


def test_azimuth_wraps_around():
    err = metrics.angle_error_deg(359.0, 30.0, 1.0, 25.0)
    assert err["azimuth"] == pytest.approx(2.0)
    assert err["elevation"] == pytest.approx(5.0)
    assert err["geodesic"] <= 5.0 + 2.0
    opposite = metrics.angle_error_deg(10.0, 0.0, 190.0, 0.0)
    assert opposite["azimuth"] == pytest.approx(180.0)
    assert opposite["geodesic"] == pytest.approx(180.0)


def test_geodesic_is_small_near_the_pole():
    err = metrics.angle_error_deg([0.0], [89.0], [90.0], [89.0])
    assert err["azimuth"][0] == pytest.approx(90.0)
    assert err["geodesic"][0] < 2.0


# --------------------------------------------------------------------------- summaries


def test_summarize_class_mean_is_unweighted_and_instance_mean_pooled():
    records = [{"class": "a", "iou": 1.0, "azimuth_error": 10.0},
               {"class": "a", "iou": 1.0, "azimuth_error": 20.0},
               {"class": "a", "iou": 1.0, "azimuth_error": 90.0},
               {"class": "b", "iou": 0.0, "azimuth_error": float("nan")}]
    s = metrics.summarize(records)
    assert s["per_class"]["a"] == {"n": 3, "iou": 1.0, "azimuth_error": 20.0}  # median
    assert s["per_class"]["b"]["azimuth_error"] is None
    assert s["class_mean"]["iou"] == pytest.approx(0.5)
    assert s["instance_mean"]["iou"] == pytest.approx(0.75)
    assert s["class_mean"]["azimuth_error"] == pytest.approx(20.0)


# --------------------------------------------------------------------------- meshing


def _l_shape_grid(res: int = 32) -> np.ndarray:
    """An L: a bar along X (long) with an upright at its +X end (tall along +Y), thin in Z."""
    bar = trimesh.creation.box(extents=[1.0, 0.2, 0.2])
    upright = trimesh.creation.box(extents=[0.2, 0.6, 0.2])
    upright.apply_translation([0.4, 0.4, 0.0])
    mesh = trimesh.util.concatenate([bar, upright])
    return voxelize_mesh(mesh.vertices, mesh.faces, res).grid


@pytest.mark.parametrize("fmt", meshing.MESH_FORMATS)
def test_mesh_round_trip_keeps_axes_orientation_and_unit_cube(fmt):
    grid = _l_shape_grid()
    data = meshing.export_mesh(meshing.voxels_to_mesh(grid.astype(np.float32)), fmt)
    mesh = trimesh.load(io.BytesIO(data), file_type=fmt, force="mesh")
    lo, hi = mesh.bounds
    assert np.all(lo >= -0.5 - 1e-6) and np.all(hi <= 0.5 + 1e-6)
    extent = hi - lo
    assert extent[0] == pytest.approx(1.0, abs=1e-6)  # longest axis fills the cube
    assert extent[0] > extent[1] > extent[2]  # long in X, taller in Y than deep in Z
    v = mesh.vertices
    top = v[:, 1] > lo[1] + 0.5 * extent[1]
    assert v[top, 0].min() > 0.2  # the upright stands at +X, not -X
    bottom = v[:, 1] < lo[1] + 0.1 * extent[1]
    assert v[bottom, 0].min() < -0.45  # the bar runs the full length at the bottom (-Y)
    assert mesh.is_watertight and mesh.volume > 0  # closed, normals outwards


def test_mesh_of_grid_touching_the_border_is_closed_and_centred():
    grid = np.ones((4, 4, 4), np.float32)
    mesh = meshing.voxels_to_mesh(grid)
    np.testing.assert_allclose(mesh.bounds, [[-0.5] * 3, [0.5] * 3])
    assert mesh.is_watertight and mesh.volume > 0
    one = np.zeros((4, 4, 4), np.float32)
    one[3, 0, 0] = 1  # voxel (3, 0, 0): centre at (0.375, -0.375, -0.375)
    np.testing.assert_allclose(meshing.voxels_to_mesh(one).centroid, [0.375, -0.375, -0.375],
                               atol=1e-6)


def test_smoothing_keeps_the_shape_in_place():
    grid = _l_shape_grid().astype(np.float32)
    raw, smooth = meshing.voxels_to_mesh(grid), meshing.voxels_to_mesh(grid, smooth=True)
    assert smooth.volume > 0 and smooth.is_watertight
    np.testing.assert_allclose(smooth.bounds, raw.bounds, atol=0.05)


def test_empty_grid_and_bad_shapes_are_clear_errors():
    with pytest.raises(ValueError, match="empty grid"):
        meshing.voxels_to_mesh(np.zeros((8, 8, 8)), 0.5)
    with pytest.raises(ValueError, match="cubic"):
        meshing.voxels_to_mesh(np.zeros((8, 8)))
    with pytest.raises(ValueError, match="format"):
        meshing.export_mesh(meshing.voxels_to_mesh(np.ones((2, 2, 2))), "stl")


def test_fuse_probabilities_is_the_mean():
    a, b = np.zeros((2, 2, 2)), np.ones((2, 2, 2))
    np.testing.assert_allclose(meshing.fuse_probabilities([a, b, b]), np.full((2, 2, 2), 2 / 3))
    with pytest.raises(ValueError):
        meshing.fuse_probabilities([a, np.ones((3, 3, 3))])


def test_surface_points_are_seeded():
    mesh = meshing.voxels_to_mesh(_l_shape_grid().astype(np.float32))
    a = meshing.sample_surface_points(mesh, 100, seed=3)
    np.testing.assert_array_equal(a, meshing.sample_surface_points(mesh, 100, seed=3))
    assert a.shape == (100, 3)
