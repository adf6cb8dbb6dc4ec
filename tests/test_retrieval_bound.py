"""The retrieval bound: best same-class training shape per held-out shape."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from backend.cli import main
from backend.data.splits import Splits, save_splits
from backend.evaluation import bound as rb
from synth_render import binvox, r2n2

CHAIR, TABLE = "03001627", "04379243"


def _grid(*filled: tuple[int, int, int], res: int = 4) -> np.ndarray:
    g = np.zeros((res,) * 3, dtype=bool)
    for x, y, z in filled:
        g[x, y, z] = True
    return g


def test_best_match_hand_computed():
    query = np.stack([_grid((0, 0, 0), (1, 0, 0)), _grid((3, 3, 3))])
    candidates = np.stack([_grid((0, 0, 0)),                    # q0: 1/2; q1: 0
                           _grid((0, 0, 0), (1, 0, 0), (2, 0, 0)),  # q0: 2/3; q1: 0
                           _grid((3, 3, 3), (3, 3, 2))])          # q0: 0;   q1: 1/2
    iou, index = rb.best_match(query, candidates)
    np.testing.assert_allclose(iou, [2 / 3, 1 / 2])
    assert index.tolist() == [1, 2]


def test_best_match_empty_grids_and_no_candidates():
    iou, _ = rb.best_match(np.stack([_grid()]), np.stack([_grid(), _grid((1, 1, 1))]))
    assert iou.tolist() == [1.0]
    with pytest.raises(ValueError, match="no candidate"):
        rb.best_match(np.stack([_grid()]), np.zeros((0, 4, 4, 4), dtype=bool))


def test_best_match_same_result_in_chunks(monkeypatch):
    rng = np.random.default_rng(0)
    queries, candidates = rng.random((5, 4, 4, 4)) < 0.3, rng.random((23, 4, 4, 4)) < 0.3
    whole = rb.best_match(queries, candidates)
    monkeypatch.setattr(rb, "CANDIDATE_CHUNK", 4)
    chunked = rb.best_match(queries, candidates)
    np.testing.assert_array_equal(whole[0], chunked[0])
    np.testing.assert_array_equal(whole[1], chunked[1])
    brute = [max((q & c).sum() / (q | c).sum() for c in candidates) for q in queries]
    np.testing.assert_allclose(whole[0], brute)


def test_bound_only_matches_within_the_class():
    shape = _grid((1, 1, 1), (1, 2, 1))
    train = {f"{TABLE}/t0": shape.copy(), f"{CHAIR}/c0": _grid((1, 1, 1))}
    result = rb.retrieval_bound(train, {f"{CHAIR}/q": shape})
    # The identical table is not a candidate for a chair.
    assert result["per_class"][CHAIR] == {"iou": 0.5, "shapes": 1, "train_shapes": 1}
    assert result["shapes"][f"{CHAIR}/q"] == {"iou": 0.5, "match": f"{CHAIR}/c0"}
    assert result["class_mean_iou"] == 0.5
    with pytest.raises(ValueError, match="no training shape"):
        rb.retrieval_bound({f"{TABLE}/t0": shape}, {f"{CHAIR}/q": shape})


def _tree(root, grids: dict[str, np.ndarray]) -> None:
    r2n2.claim_tree(root, r2n2.VOXELS, fill="carve", placement="centred")
    for key, grid in grids.items():
        path = r2n2.voxel_path(root, *key.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        r2n2.write_voxels(path, binvox.Voxels(grid, (-0.5,) * 3, 1.0))


def test_cli_writes_class_means_and_refuses_overlapping_subsets(tmp_path, caplog):
    def cube(n):
        g = np.zeros((32,) * 3, dtype=bool)
        g[:n, :n, :n] = True
        return g
    grids = {f"{CHAIR}/a": cube(4), f"{CHAIR}/b": cube(8), f"{CHAIR}/q": cube(6),
             f"{TABLE}/a": cube(10), f"{TABLE}/q": cube(10)}
    _tree(tmp_path / "voxels", grids)
    split = tmp_path / "splits.json"
    save_splits(Splits(source_train=[f"{CHAIR}/a", f"{CHAIR}/b", f"{TABLE}/a",
                                     f"{CHAIR}/missing"],
                       test=[f"{CHAIR}/q", f"{TABLE}/q"]), split)
    out = tmp_path / "bound"
    assert main(["bound", "--voxels", str(tmp_path / "voxels"), "--split", str(split),
                 "--out", str(out)]) == 0
    result = json.loads((out / "bound.json").read_text())
    chair = 6 ** 3 / 8 ** 3  # cube(6) inside cube(8) beats cube(4) inside cube(6)
    assert result["per_class"][CHAIR]["iou"] == pytest.approx(chair)
    assert result["per_class"][TABLE]["iou"] == 1.0
    assert result["class_mean_iou"] == pytest.approx((chair + 1.0) / 2)
    assert result["train_shapes"] == 3  # the missing grid is skipped, not fatal
    assert "| chair | 1 | 2 | 0.422 |" in (out / "bound.md").read_text()

    # Training shapes from another split file must not include the held-out shapes.
    other = tmp_path / "other.json"
    save_splits(Splits(source_train=[f"{CHAIR}/a", f"{CHAIR}/q"]), other)
    with caplog.at_level(logging.ERROR):
        assert main(["bound", "--voxels", str(tmp_path / "voxels"), "--split", str(split),
                     "--train-split", str(other), "--out", str(out)]) == 2
    assert "both held out and training" in caplog.text
