"""Golden digests of the procedural library: its bytes for a given seed must never move.

Shapes depend on the order of random draws, and their ids do not depend on their geometry, so
a change that alters any shape silently changes every split, the test set and the demo. The
fingerprints below were taken from the code as it was on 2026-12-01 (before the voxel
conventions changed), re-taken on 2026-12-02 with that same code on another CPU, whose last
printed digits differ. The library rejects near-duplicates with the 32³ grids of
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
COORD_TOL = 1e-5  # the OBJ prints 6 decimals; one last digit moves a mean by <= 1e-6

# Per class folder: digest of all but the vertex coordinates, and the coordinates' moments
# (mean, rms and an order-weighted mean per axis; see _folder_fingerprint).
TREE_FINGERPRINTS = {
    (0, '02691156'): ('a2dd4561779e6c26f0f1dd729ab02aa8',
        (0.0, -0.030166, -0.004541, 0.072817, 0.049279,
         0.23382, 1.4e-05, 0.000304, 0.00057)),
    (0, '02828884'): ('3b622c9315ff9a62e5d6f351b517c39e',
        (0.001475, 0.016462, -0.013691, 0.403318, 0.107418,
         0.123274, -0.004495, -0.006234, -0.007584)),
    (0, '02933112'): ('8ccc3bca4f9c9ff71d139db390c5f6d6',
        (0.016444, -0.069555, -0.033363, 0.142407, 0.324237,
         0.112418, 0.001039, -0.003603, 0.001429)),
    (0, '02958343'): ('1c97c913828258d32643a68f33a956d8',
        (-0.0, -0.037688, 0.007242, 0.172972, 0.083386,
         0.264339, 0.002076, -7.2e-05, -0.002477)),
    (0, '03001627'): ('1e291bf35b5286b0f057f3ef16aea956',
        (0.0, -0.18039, -0.015389, 0.153046, 0.288202,
         0.162013, 0.000548, -0.003635, 0.001426)),
    (0, '03211117'): ('ba1207787eb262167463f01ae7dd8ed1',
        (-0.0, -0.060627, -0.001941, 0.273578, 0.245657,
         0.051578, 0.005568, 0.051886, -0.004376)),
    (0, '03636649'): ('d5030c8ca555265a1682dc6dbcb8ecfb',
        (-0.003391, 0.097241, 0.00836, 0.092919, 0.363579,
         0.094121, 0.000751, 0.004165, 0.000373)),
    (0, '03691459'): ('5343064f4d79d83d5fa2716520c377b4',
        (-0.0, 0.257841, -0.015441, 0.095762, 0.400801,
         0.104617, 0.003106, 0.011084, 0.004516)),
    (0, '04090263'): ('871940bddcfc24510569afe2481c8275',
        (-1.2e-05, 0.048884, -0.080427, 0.01788, 0.08117,
         0.242968, 0.000125, -0.001297, 0.007275)),
    (0, '04256520'): ('78b4ffc04e6bc0b0ed4b8151cd928c18',
        (-0.0, -0.036702, -0.004111, 0.288812, 0.12543,
         0.189402, -0.008984, 0.000571, 0.005534)),
    (0, '04379243'): ('f7e646904a6b57c957f9ddcfdff5d5c4',
        (-0.0, 0.077509, -0.0, 0.218075, 0.25489,
         0.186154, 0.002964, -0.00691, 0.004761)),
    (0, '04401088'): ('206bd7abd1bfcafc627ffec3fedde9b6',
        (-0.007433, 0.037538, 0.00915, 0.123178, 0.236311,
         0.095963, 0.007, 0.01564, -0.00053)),
    (0, '04530566'): ('46826c7b2999e8a969240505084ab563',
        (-0.0, -0.13614, -0.007001, 0.065172, 0.200979,
         0.228773, -0.000458, -0.001111, -0.002358)),
    (1000, '02691156'): ('fd7cefb538d453f3aa6a09365a9f1cb6',
        (0.0, -0.030367, -0.012724, 0.09223, 0.042242,
         0.183865, -0.000394, -0.00028, 0.001392)),
    (1000, '02828884'): ('9f87a6e5f2344965a90d15e220281234',
        (-0.000941, 0.025542, -0.005335, 0.422388, 0.096129,
         0.070269, -0.06053, 0.00323, 0.000823)),
    (1000, '02933112'): ('dbfbae2f2d47bb61632f524f73f39ede',
        (0.000995, 0.004417, -0.015533, 0.182016, 0.311307,
         0.130025, 0.004765, -0.025748, -0.000502)),
    (1000, '02958343'): ('d57d874a5dedf4272064bcd0cc3c3da1',
        (-0.0, -0.042664, 0.002218, 0.153444, 0.083299,
         0.259708, -8.3e-05, 0.000572, 0.000612)),
    (1000, '03001627'): ('690ce478b3ba4f8521253db2eb54041b',
        (-0.0, -0.050988, 0.037594, 0.186213, 0.237935,
         0.185369, -0.01901, 0.014414, 0.008991)),
    (1000, '03211117'): ('cb5cd06d30de49348bbb30ca92aef76d',
        (-0.0, -0.10716, -0.003568, 0.258938, 0.243777,
         0.088068, -0.057157, 0.030008, 0.00338)),
    (1000, '03636649'): ('99f06feeca197f8b3cacd50d36fe06cc',
        (0.0, -0.141536, -0.0, 0.148775, 0.222039,
         0.148775, -0.000408, 0.002869, -0.000452)),
    (1000, '03691459'): ('fe43259a927a05bc0846c7833c1f34d6',
        (-0.0, -0.028538, -0.089967, 0.246663, 0.172814,
         0.227147, 0.005999, 0.005838, 0.007778)),
    (1000, '04090263'): ('e58f58d71e3123b6a70538a697b505a6',
        (1.4e-05, 0.040172, 0.059094, 0.014433, 0.066602,
         0.261497, 0.001579, -0.000641, -0.003546)),
    (1000, '04256520'): ('7027686502a2c7bce21d69cd6368092b',
        (0.029739, -0.014018, 0.064282, 0.320126, 0.072809,
         0.169936, 0.003606, -0.000153, 0.00014)),
    (1000, '04379243'): ('a634c754e58f48525d61f1e23b87e1de',
        (0.0, 0.086754, -0.0, 0.299507, 0.227689,
         0.189548, 0.000502, -0.010079, -0.011039)),
    (1000, '04401088'): ('a14d7a9cc94c6cbca2fb11a0fa92d1c9',
        (0.003668, -0.067718, 0.005683, 0.152942, 0.339961,
         0.070833, 0.015353, -0.016738, -0.002553)),
    (1000, '04530566'): ('ef4bd1477c8da775592348556913c5c2',
        (-0.0, -0.044789, -0.001447, 0.073353, 0.101245,
         0.257697, 0.000532, -0.001227, 0.002156)),
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


def _folder_fingerprint(root: Path, folder: Path) -> tuple[str, tuple[float, ...]]:
    """A class folder as (digest of everything but the vertex coordinates, moments of the
    coordinates). The coordinates are compared to :data:`COORD_TOL`: their last printed
    digit differs between CPUs (the same code gave other bytes on an Intel and an AMD
    machine), while any change of a random draw moves the moments by far more."""
    h = hashlib.sha256()
    coords = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        h.update(str(path.relative_to(root)).encode())
        if path.suffix != ".obj":
            h.update(path.read_bytes())
            continue
        for line in path.read_text().splitlines():
            if line.startswith("v "):
                coords.append([float(x) for x in line.split()[1:]])
                h.update(b"v\n")
            else:
                h.update(line.encode() + b"\n")
    v = np.asarray(coords, dtype=np.float64)
    weights = (np.arange(len(v)) % 7 - 3.0)[:, None]  # order-sensitive
    moments = (*v.mean(0), *np.sqrt((v ** 2).mean(0)), *(weights * v).mean(0))
    return h.hexdigest()[:32], tuple(round(float(m), 6) for m in moments)


@pytest.mark.parametrize("seed", [0, 1000])
def test_procedural_tree_is_frozen(tmp_path, seed):
    run_shapes(ShapesConfig(tmp_path, list(ALL_SYNSETS), PER_CLASS, seed))
    changed = []
    for synset in ALL_SYNSETS:
        digest, moments = _folder_fingerprint(tmp_path, tmp_path / synset)
        want_digest, want_moments = TREE_FINGERPRINTS[(seed, synset)]
        if digest != want_digest or not np.allclose(moments, want_moments, rtol=0,
                                                    atol=COORD_TOL):
            changed.append(synset)
    assert not changed, f"procedural shapes changed at seed {seed} for synsets {changed}"


def test_duplicate_check_grids_are_frozen():
    got = {}
    for synset in ALL_SYNSETS:
        h = hashlib.sha256()
        for _, _, grid in class_shapes(0, synset, PER_CLASS):
            h.update(np.packbits(np.asarray(grid, bool)).tobytes())
        got[synset] = h.hexdigest()[:32]
    assert got == CHECK_GRID_DIGESTS
