"""Golden digests of the procedural library: its bytes for a given seed must never move.

Shapes depend on the order of random draws, and their ids do not depend on their geometry, so
a change that alters any shape silently changes every split, the test set and the demo. The
digests below were taken from the code as it was on 2026-12-01 (before the voxel conventions
changed). The library rejects near-duplicates with the 32³ grids of
:func:`synth_render.procedural.library.voxel_grid`, so those grids are frozen too: whatever the
voxelizer becomes, that check must keep today's fill.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from synth_render.config import ShapesConfig
from synth_render.procedural import run_shapes
from synth_render.procedural.library import class_shapes
from synth_render.taxonomy import ALL_SYNSETS

PER_CLASS = 3

# sha256 (first 32 hex digits) of every file of a class's folder (relative path, then bytes).
TREE_DIGESTS = {
    (0, "02691156"): "f601cb7098cd151f91104f9749ae23da",
    (0, "02828884"): "e4b62e3a3f66eb7fe66bb1de3096e38d",
    (0, "02933112"): "9a16b4b056dfede75a030d9e83c84ac3",
    (0, "02958343"): "1ecd732395029f6d75a7aab9d82f6642",
    (0, "03001627"): "0cf13dc3a7f518f47a438730908bdf55",
    (0, "03211117"): "259d2d862d4c0b8d3926ab57d9115b54",
    (0, "03636649"): "18c8afea2699eefada1327828116e77f",
    (0, "03691459"): "5ae5cdab7c9016a969ae8072fdec59bc",
    (0, "04090263"): "1eaeb9fd9e3db7b7daf70337452463b8",
    (0, "04256520"): "630bf415e601681a1cac7963abcbb3bf",
    (0, "04379243"): "aa378a25b0da88e38a879908f55f861b",
    (0, "04401088"): "adf841a3999ba683c8c48b5da6ee4bef",
    (0, "04530566"): "56ed286b497ab04ca83648214f11c506",
    (1000, "02691156"): "519074bfdd4d35432779ad46c2bc1ac2",
    (1000, "02828884"): "967b0100527ccd51f16de5d286bc6f7c",
    (1000, "02933112"): "4ede62f7804da2e4a8950ee22523a38e",
    (1000, "02958343"): "8bcf7072688f914aef8b9dd07e0d9018",
    (1000, "03001627"): "d1377c14ffe474f9d7c0812ed3c2c180",
    (1000, "03211117"): "6ee8f1ffaf7d3bf26c939fa463473e37",
    (1000, "03636649"): "cbfb8b811ea74b10bd4acfd25f080984",
    (1000, "03691459"): "9858cbd01a300304f9f4c18f0bee1449",
    (1000, "04090263"): "a938e9ceac02d514aa076983b2c345fb",
    (1000, "04256520"): "c13e1dc29de52206f96e2e6fcde6e7e1",
    (1000, "04379243"): "93a7d65e78b07964e685c073703eeec0",
    (1000, "04401088"): "aad6c729c6e8e1cd625f37906bb112a9",
    (1000, "04530566"): "f4f28abd394b7341e0ef2ace8e197f4e",
}

# sha256 (first 32 hex digits) of the duplicate check's grids of the first shapes, seed 0.
CHECK_GRID_DIGESTS = {
    "02691156": "e69edcf96bf00a475d8b3fcab0aac9fe",
    "02828884": "9122bba6c8514ad11c9b91bdf0976e77",
    "02933112": "926bf26b8aa9a3e95be399c6c9d2c33e",
    "02958343": "01cf9f0edd9ea4aad1ea05e145b6a76a",
    "03001627": "d6cd50742b3812e247c7618285857642",
    "03211117": "568c9e6c9799415e55daf068bf2edaed",
    "03636649": "fa15c022aa434f5b706f80b55c504033",
    "03691459": "a366e589060b841c7189519922adb0e8",
    "04090263": "04f443ad5805a149557a21a6e0bd4851",
    "04256520": "657b43de89a632fbb65a7923d3f1cd28",
    "04379243": "0668cbf5fc33f41500d08b2b5cf9aa94",
    "04401088": "60b20853c2d1d8eb468f988d74aec3a7",
    "04530566": "45e9f435021a6db7894aab483cf1a02b",
}


def _folder_digest(root: Path, folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:32]


@pytest.mark.parametrize("seed", [0, 1000])
def test_procedural_tree_bytes_are_frozen(tmp_path, seed):
    run_shapes(ShapesConfig(tmp_path, list(ALL_SYNSETS), PER_CLASS, seed))
    got = {(seed, s): _folder_digest(tmp_path, tmp_path / s) for s in ALL_SYNSETS}
    want = {k: v for k, v in TREE_DIGESTS.items() if k[0] == seed}
    changed = sorted(s for (_, s), d in got.items() if want[(seed, s)] != d)
    assert not changed, f"procedural shapes changed at seed {seed} for synsets {changed}"


def test_duplicate_check_grids_are_frozen():
    got = {}
    for synset in ALL_SYNSETS:
        h = hashlib.sha256()
        for _, _, grid in class_shapes(0, synset, PER_CLASS):
            h.update(np.packbits(np.asarray(grid, bool)).tobytes())
        got[synset] = h.hexdigest()[:32]
    assert got == CHECK_GRID_DIGESTS
