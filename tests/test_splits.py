"""The split file: disjoint subsets, stable assignment, round trip, test shapes = test assets."""

from __future__ import annotations

import pytest

from backend.data import splits as S
from synth_render.procedural import model_id
from synth_render.shards import asset_split
from synth_render.taxonomy import ALL_SYNSETS


def _keys(n_per_class=150):
    return [f"{s}/{model_id(0, s, i)}" for s in ALL_SYNSETS for i in range(n_per_class)]


def test_proportions_disjointness_and_asset_pools():
    keys = _keys()
    sp = S.make_splits(keys)
    sizes = {name: len(sp.subset(name)) for name in S.SUBSETS}
    assert sum(sizes.values()) == len(keys)
    assert len(set().union(*(set(sp.subset(n)) for n in S.SUBSETS))) == len(keys)
    share = {name: n / len(keys) for name, n in sizes.items()}
    assert 0.40 < share["source_train"] < 0.50 and 0.03 < share["source_val"] < 0.08
    assert 0.25 < share["target_train"] < 0.35 and 0.16 < share["test"] < 0.24
    assert all(asset_split(k.split("/")[1]) == "test" for k in sp.test)
    assert not any(asset_split(k.split("/")[1]) == "test" for k in sp.target_train)


def test_adding_shapes_moves_nothing():
    small, large = S.make_splits(_keys(20)), S.make_splits(_keys(40))
    for name in S.SUBSETS:
        assert set(small.subset(name)) <= set(large.subset(name))


def test_round_trip_and_errors(tmp_path):
    sp = S.make_splits(_keys(10))
    S.save_splits(sp, tmp_path / "splits.json")
    assert S.load_splits(tmp_path / "splits.json") == sp
    lists = S.write_model_lists(sp, tmp_path / "lists")
    assert lists["test"].read_text().split() == sp.test
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 1, "source_train": ["a/b"], "test": ["a/b"]}')
    with pytest.raises(ValueError, match="both source_train and test"):
        S.load_splits(bad)
    bad.write_text('{"version": 7}')
    with pytest.raises(ValueError, match="version"):
        S.load_splits(bad)


def test_a_dataset_rebuilt_with_more_shapes_splits_the_new_ones(tmp_path):
    """``backend dataset --per-class`` raised on an existing folder: the stored split file
    grows, shapes already split stay put, and a file made by other rules is refused."""
    from backend.data.build import _updated_splits

    path = tmp_path / "splits.json"
    first = [f"{ALL_SYNSETS[0]}/{model_id(0, ALL_SYNSETS[0], i)}" for i in range(40)]
    more = first + [f"{ALL_SYNSETS[0]}/{model_id(0, ALL_SYNSETS[0], i)}" for i in range(40, 80)]
    small = _updated_splits(path, first)
    big = _updated_splits(path, more)
    assert S.load_splits(path) == big == S.make_splits(more)
    for name in S.SUBSETS:
        assert set(small.subset(name)) <= set(big.subset(name))
    assert _updated_splits(path, first) == big  # fewer shapes on disk: nothing is dropped
    odd = S.Splits(test=list(big.source_train), source_train=list(big.test))
    S.save_splits(odd, path)
    with pytest.raises(ValueError, match="not in the subset"):
        _updated_splits(path, more)
