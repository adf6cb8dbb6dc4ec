"""Quality floor of the shipped weights (``backend/weights/default.pt``) on held-out data.

A change to the readers, the view/voxel frames, the voxelizer or the preprocessing that silently
worsens (or suspiciously improves) what the shipped model scores fails here, in the default run.

Data, generated once per module with the project's own public functions: procedural shapes at
seed 1234 (training shapes use seeds < 1000; the demo uses 1000), 1 shape of each of the 13
classes, 32³ voxels, 1 view per shape at 64 px (the standard data set's size), in both render
styles (``synthetic`` and ``photo``), render seed 1234. Each style is scored with
``python -m backend eval --renders R --voxels V --out DIR --gallery 0 --device cpu`` (run
in-process through :func:`backend.cli.main`; default checkpoint = the shipped weights), and the
figures are read from its ``report.json``.

Baselines, measured on 2026-12-01 with the code before that day's changes (commit 294bd5a),
two runs, bit-identical renders and voxels and identical figures (CPU)::

    style       IoU class mean   IoU image mean   class accuracy
    synthetic   0.5885           0.5885           1.0000 (13/13)
    photo       0.3841           0.3841           0.3846 (5/13)

(one shape per class, so the class mean and the image mean coincide.) The code after the
change voxelizes by binvox's carving instead of a flood fill, which fills a little more of the
ground truth: the same data then score 0.5828 (synthetic) and 0.3803 (photo), all of the
difference from the chair (0.741 -> 0.666 synthetic), inside the margin; with ``fill="flood"``
the figures are the baselines' to the last digit (the exactness check below).

A change that ships new weights re-bases these figures once, in the same change: rerun
``pytest -q tests/test_quality_floor.py -s`` and copy the printed figures here and below.

Two further checks of the R2N2 conventions (voxel files in ShapeNet v1's frame, metadata
azimuths ``(90 - a) mod 360``), which a reader and a writer could get wrong in matching ways:

- Exactness: the same shapes voxelized with ``fill="flood"`` (the fill of the code before the
  change) give, image by image, the IoU, class, predicted view and view errors that the code
  before the change gave in its own layout (:data:`PRE_CHANGE_RECORDS`, measured with commit
  294bd5a on 2026-12-01; photo-style predictions only on that CPU type, see
  :data:`CPU_DEPENDENT_IMAGES`). They come from the shipped weights, so new weights re-base them
  too (render + ``voxelize --fill flood`` + eval with this file's parameters; copy the
  per-image records of ``report.json``).
- Orientation: on the synthetic renders, each prediction overlaps the ground truth (read with
  :func:`synth_render.r2n2.read_voxels`) at least as well as it overlaps that ground truth turned
  by 90, 180 or 270 degrees about +Y. Measured: 13 of 13 images (the 2 that cannot tell, the
  lamp and the table, are symmetric under all the turns); reading the files' raw v1 grids
  instead, as a reader ignoring the voxel frame would, the 270-degree turn wins and only those
  2 remain.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from backend.cli import main as backend_main
from backend.core import metrics
from synth_render import binvox, r2n2
from synth_render.config import RenderConfig, ShapesConfig, VoxelizeConfig
from synth_render.procedural import run_shapes
from synth_render.render import run_render
from synth_render.taxonomy import ALL_SYNSETS
from synth_render.voxelize import run_voxelize

pytestmark = pytest.mark.blender

SHAPE_SEED = 1234  # >= 1000: never training data, and not the demo's 1000
RENDER_SEED = 1234
SIZE = 64
STYLES = ("synthetic", "photo")

# Today's figures (see the module docstring); class accuracy is the class mean.
BASELINE = {
    "synthetic": {"iou_class_mean": 0.5885, "iou_image_mean": 0.5885, "class_accuracy": 13 / 13},
    "photo": {"iou_class_mean": 0.3841, "iou_image_mean": 0.3841, "class_accuracy": 5 / 13},
}
# Margin on the mean IoU, both directions (a big jump means the fixture or the readers changed
# too). The pipeline is deterministic (two runs agree bit for bit), so the margin only has to
# absorb harmless numeric drift (torch/BLAS versions, another CPU), expected to be far smaller.
# It must stay tight because the images are few: with 13 per style, a fault that ruins a single
# image (its IoU down by ~0.3: a flipped axis, a grid shifted or half filled) moves the mean by
# only ~0.023, and a systematic fault must cost every image more than 0.02 to show. Do not
# widen it to make a change pass: re-base (module docstring) only when new weights ship.
IOU_MARGIN = 0.02
# Class accuracy moves in steps of 1/13 ~ 0.077; allow one image to flip, not two.
ACC_MARGIN = 1.5 / 13

# Per image (key, view) of the code before the change (commit 294bd5a, its own layout, flood
# fill), rounded to 1e-4: predicted class, IoU, azimuth error, elevation error, predicted
# azimuth, predicted elevation, ground-truth azimuth, ground-truth elevation (degrees, the
# canonical frame). The ground-truth class is the key's synset.
RECORD_FIELDS = ("pred_class", "iou", "azimuth_error", "elevation_error", "pred_azimuth",
                 "pred_elevation", "gt_azimuth", "gt_elevation")
PRE_CHANGE_RECORDS = {
    "synthetic": {
        ("02691156/a12c0e56a7c0c2791489b2cbf7566e5e", 0):
            ("02691156",   0.5728,  13.0654,   2.0731, 124.8686,  27.7319, 111.8032,  25.6588),
        ("02828884/fbdf4d7d26572ec36b188d852c48f170", 0):
            ("02828884",   0.4837, 176.1907,   2.3150,  88.2945,  27.5585, 272.1038,  29.8734),
        ("02933112/9a009fd530a9ddeba6487d363a38b603", 0):
            ("02933112",   0.5287,   7.4983,   0.8689, 336.5988,  27.5150, 329.1004,  28.3838),
        ("02958343/5e7b55dd4ea26cfa66123f60fc30bc53", 0):
            ("02958343",   0.7033,   2.2500,   0.1475,  85.6210,  27.4723,  83.3710,  27.6198),
        ("03001627/b7da05010243b71943103324644d7759", 0):
            ("03001627",   0.7409, 162.0101,   0.5154, 302.4391,  27.4524, 140.4290,  26.9370),
        ("03211117/543ce99ada9e7d12ab305b8806e4fa1c", 0):
            ("03211117",   0.3475,   4.1737,   0.2708,  68.1601,  27.3210,  72.3338,  27.5918),
        ("03636649/f84b7d2250aac45a70c421362348b52d", 0):
            ("03636649",   0.1375,  86.4562,   1.2739, 225.8476,  27.6191, 312.3038,  28.8931),
        ("03691459/84c00bacc652afa2320d6d49345e8732", 0):
            ("03691459",   0.8103,  31.1109,   0.1740, 284.9535,  27.4266, 253.8426,  27.6006),
        ("04090263/c3e0e2c3ea80fbc8fce1544f0f75786b", 0):
            ("04090263",   0.7231,   0.9651,   0.0954, 184.6824,  27.4742, 183.7174,  27.5696),
        ("04256520/80bf0ab8e378ba7a5bca752aaf46fa1e", 0):
            ("04256520",   0.7875,   6.0432,   1.9900, 239.7363,  27.4788, 245.7796,  29.4688),
        ("04379243/07cebfec74ca27c0f9dde787c303b285", 0):
            ("04379243",   0.5771,  76.2897,   0.7500,  41.0628,  27.3689, 324.7730,  26.6188),
        ("04401088/b20909d299d9dde898855f3e19a63bd9", 0):
            ("04401088",   0.6474,  46.8727,   1.7882, 110.0842,  27.5324,  63.2115,  29.3206),
        ("04530566/77c73f0a5535004c73d16b323753dcf0", 0):
            ("04530566",   0.5914,   0.1740,   0.6661, 125.5260,  27.7003, 125.3520,  27.0342),
    },
    "photo": {
        ("02691156/a12c0e56a7c0c2791489b2cbf7566e5e", 0):
            ("02691156",   0.5154,   0.3845,   1.8323, 111.4187,  27.4911, 111.8032,  25.6588),
        ("02828884/fbdf4d7d26572ec36b188d852c48f170", 0):
            ("02828884",   0.1395, 147.3233,   2.4248, 124.7805,  27.4486, 272.1038,  29.8734),
        ("02933112/9a009fd530a9ddeba6487d363a38b603", 0):
            ("03691459",   0.4519, 100.0366,   0.8521, 229.0638,  27.5318, 329.1004,  28.3838),
        ("02958343/5e7b55dd4ea26cfa66123f60fc30bc53", 0):
            ("02958343",   0.7471,   1.1801,   0.2487,  82.1910,  27.3711,  83.3710,  27.6198),
        ("03001627/b7da05010243b71943103324644d7759", 0):
            ("03001627",   0.5402, 145.0302,   0.4311, 285.4592,  27.3680, 140.4290,  26.9370),
        ("03211117/543ce99ada9e7d12ab305b8806e4fa1c", 0):
            ("02933112",   0.1087,  49.9476,   0.3034,  22.3862,  27.2884,  72.3338,  27.5918),
        ("03636649/f84b7d2250aac45a70c421362348b52d", 0):
            ("02933112",   0.0468,  75.3701,   1.1214,  27.6739,  27.7717, 312.3038,  28.8931),
        ("03691459/84c00bacc652afa2320d6d49345e8732", 0):
            ("02933112",   0.5419, 129.0273,   0.2748,  22.8699,  27.3258, 253.8426,  27.6006),
        ("04090263/c3e0e2c3ea80fbc8fce1544f0f75786b", 0):
            ("02828884",   0.0160,  29.1957,   0.0205, 212.9131,  27.5490, 183.7174,  27.5696),
        ("04256520/80bf0ab8e378ba7a5bca752aaf46fa1e", 0):
            ("02828884",   0.3702, 101.7853,   2.0365, 143.9943,  27.4323, 245.7796,  29.4688),
        ("04379243/07cebfec74ca27c0f9dde787c303b285", 0):
            ("04379243",   0.4781,  35.6467,   0.7787,   0.4197,  27.3975, 324.7730,  26.6188),
        ("04401088/b20909d299d9dde898855f3e19a63bd9", 0):
            ("02958343",   0.5985,  75.8107,   1.8483, 139.0222,  27.4723,  63.2115,  29.3206),
        ("04530566/77c73f0a5535004c73d16b323753dcf0", 0):
            ("02691156",   0.4393, 165.6104,   0.3392, 319.7416,  27.3734, 125.3520,  27.0342),
    },
}
# The new code with fill="flood" must reproduce them up to the numeric drift between CPUs:
# on the machine they were taken on it matched to the rounding (5e-5); on another (AMD EPYC)
# the renders' and network's last bits moved one photo's azimuth by 0.49 deg and its IoU by
# 0.0013. A convention bug moves azimuths by 90 deg and IoUs by tenths.
RECORD_TOL = 2e-4  # classes, ground-truth angles: exact but for rounding
IOU_TOL = 0.005
ANGLE_TOL = 1.0  # degrees, predicted angles and their errors
PREDICTED = ("iou", "azimuth_error", "elevation_error", "pred_azimuth", "pred_elevation")
AZIMUTH_FIELDS = ("pred_azimuth", "gt_azimuth")  # compared on the circle (359.99 ~ 0.01)

# Orientation check (synthetic renders): images whose prediction overlaps the unturned ground
# truth at least as well as any turn of it. Measured 13 of 13; a reader ignoring the voxel
# frame scores 2 (the lamp and the table, symmetric under every turn). Two may flip.
MIN_FACING = 11
MAX_FACING_RAW = 4  # the same count on the files' raw (v1-frame) grids: measured 2


def _eval(renders: Path, voxels: Path, out: Path) -> dict:
    """``report.json`` of ``backend eval`` (default weights, CPU, no gallery)."""
    rc = backend_main(["eval", "--renders", str(renders), "--voxels", str(voxels),
                       "--out", str(out), "--gallery", "0", "--device", "cpu"])
    assert rc == 0, f"backend eval failed on {renders} + {voxels} (see the captured log)"
    return json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> dict[str, Path]:
    """The held-out data: ``root``, ``shapes``, ``voxels`` (default voxelization) and
    ``renders_<style>`` for each style."""
    root = tmp_path_factory.mktemp("quality_floor")
    shapes, voxels = root / "shapes", root / "voxels"
    assert run_shapes(ShapesConfig(shapes, list(ALL_SYNSETS), per_class=1, seed=SHAPE_SEED)) == 0
    assert run_voxelize(VoxelizeConfig(shapes, voxels, res=32)) == 0
    out = {"root": root, "shapes": shapes, "voxels": voxels}
    for style in STYLES:
        renders = out[f"renders_{style}"] = root / f"renders_{style}"
        assert run_render(RenderConfig(shapes, renders, style=style, views=1, size=SIZE,
                                       workers=2, seed=RENDER_SEED)) == 0
    return out


@pytest.fixture(scope="module")
def reports(trees) -> dict[str, dict]:
    """style -> ``report.json`` of ``backend eval`` on the held-out renders of that style."""
    return {style: _eval(trees[f"renders_{style}"], trees["voxels"],
                         trees["root"] / f"eval_{style}") for style in STYLES}


@pytest.fixture(scope="module")
def flood_reports(trees) -> dict[str, dict]:
    """style -> ``report.json`` of ``backend eval`` with the same shapes voxelized by the flood
    fill (what the code before the change did), into a tree of its own."""
    voxels = trees["root"] / "voxels_flood"
    assert run_voxelize(VoxelizeConfig(trees["shapes"], voxels, res=32, fill="flood")) == 0
    assert r2n2.tree_conventions(voxels, r2n2.VOXELS)["fill"] == "flood"
    return {style: _eval(trees[f"renders_{style}"], voxels,
                         trees["root"] / f"eval_flood_{style}") for style in STYLES}


def _figures(report: dict) -> dict[str, float]:
    m = report["metrics"]
    return {"iou_class_mean": m["class_mean"]["iou"],
            "iou_image_mean": m["instance_mean"]["iou"],
            "class_accuracy": m["class_mean"]["class_correct"],
            "n_images": report["n_images"]}


def _describe(style: str, figures: dict) -> str:
    per_image = ", ".join(f"{k}: {v:.4f}" for k, v in figures.items() if k != "n_images")
    return (f"{style}: measured {per_image} on {figures['n_images']} images; "
            f"baseline {BASELINE[style]}")


@pytest.mark.parametrize("style", STYLES)
def test_shipped_weights_score_todays_iou(reports, style):
    figures = _figures(reports[style])
    print(_describe(style, figures))
    assert figures["n_images"] == len(ALL_SYNSETS), _describe(style, figures)
    base = BASELINE[style]
    for key in ("iou_class_mean", "iou_image_mean"):
        assert abs(figures[key] - base[key]) <= IOU_MARGIN, _describe(style, figures)
    assert abs(figures["class_accuracy"] - base["class_accuracy"]) <= ACC_MARGIN, \
        _describe(style, figures)


# --------------------------------------------------------------------------- conventions


def _record_mismatches(style: str, report: dict) -> list[str]:
    """What differs, image by image, between ``report`` and :data:`PRE_CHANGE_RECORDS`."""
    expected = PRE_CHANGE_RECORDS[style]
    got = {(r["key"], r["view_index"]): r for r in report["records"]}
    problems = [f"{style} {k}: missing" for k in expected if k not in got]
    problems += [f"{style} {k}: not in the pre-change figures" for k in got if k not in expected]
    for k in expected.keys() & got.keys():
        rec, want = got[k], dict(zip(RECORD_FIELDS, expected[k], strict=True))
        if rec["class"] != k[0].split("/")[0]:
            problems.append(f"{style} {k}: class {rec['class']!r}")
        for name, value in want.items():
            have = rec[name]
            if isinstance(value, str):
                bad = have != value
            else:
                tol = (IOU_TOL if name == "iou" else ANGLE_TOL) if name in PREDICTED \
                    else RECORD_TOL
                diff = (have - value + 180.0) % 360.0 - 180.0 if name in AZIMUTH_FIELDS \
                    else have - value
                bad = not (math.isfinite(have) and abs(diff) <= tol)
            if bad:
                problems.append(f"{style} {k}: {name} {have!r}, before the change {value!r}")
    return sorted(problems)


# Cycles (path tracing, then the denoiser) is not bit-identical across CPU instruction sets:
# the photo-style records were measured on an AMD EPYC (AVX2); on an Intel Xeon (AVX-512) the
# same commit gives 2 of the 13 photos a different prediction (the cabinet's IoU 0.452 -> 0.444,
# the sofa's 0.370 -> 0.257, their azimuths 15-27 degrees apart), every ground-truth field and
# the other 11 images unchanged. Workbench (the synthetic style) is exact on both.
CPU_DEPENDENT_IMAGES = {"synthetic": 0, "photo": 2}


@pytest.mark.parametrize("style", STYLES)
def test_eval_matches_the_pre_change_code(flood_reports, style):
    problems = _record_mismatches(style, flood_reports[style])
    exact = [p for p in problems if p.split(": ")[1].split(" ")[0] not in PREDICTED]
    assert not exact, "\n".join(exact)
    images = {p.split(": ")[0] for p in problems if p not in exact}
    assert len(images) <= CPU_DEPENDENT_IMAGES[style], "\n".join(problems)


def _synthetic_predictions(trees) -> tuple[list[str], np.ndarray, float]:
    """Keys, voxel probabilities and threshold of the shipped model on the synthetic renders,
    through the data set, batching and ``predict`` that ``backend eval`` uses."""
    import torch

    from backend.core.checkpoint import load_model
    from backend.evaluation.evaluate import EvalConfig, _voxel_res, load_eval_dataset
    from backend.evaluation.gallery import as_array, collate

    model, info = load_model(None, "cpu")
    cfg = EvalConfig(out=trees["root"] / "unused", renders=trees["renders_synthetic"],
                     voxels=trees["voxels"])
    dataset, _ = load_eval_dataset(cfg, int(info.image_size), _voxel_res(info))
    batch = collate([dataset[i] for i in range(len(dataset))])
    with torch.inference_mode():
        probs = as_array(model.eval().predict(batch["image"])["probs"]).astype(np.float32)
    return list(batch["key"]), probs, float(info.threshold)


def _facing(keys, probs, threshold, voxels: Path, read) -> tuple[int, list[str]]:
    """How many predictions overlap their ground truth (``read(path) -> [x, y, z] grid`` of the
    file under ``voxels``) at least as well as any of its turns by 90, 180, 270 degrees about
    +Y (ties count: a shape symmetric under a turn cannot tell), and one line per image."""
    count, lines = 0, []
    for key, p in zip(keys, probs, strict=True):
        gt = read(r2n2.voxel_path(voxels, *key.split("/")))
        ious = [metrics.voxel_iou(p, np.rot90(gt, k, axes=(0, 2)), threshold) for k in range(4)]
        facing = ious[0] >= max(ious[1:])
        count += facing
        lines.append(f"{key}: IoU at 0/90/180/270 = " + " ".join(f"{x:.3f}" for x in ious)
                     + ("" if facing else "  <- a turn wins"))
    return count, lines


def test_predictions_face_the_ground_truth(trees):
    keys, probs, threshold = _synthetic_predictions(trees)
    assert len(keys) == len(ALL_SYNSETS)
    voxels = trees["voxels"]
    facing, lines = _facing(keys, probs, threshold, voxels, lambda p: r2n2.read_voxels(p).grid)
    raw, raw_lines = _facing(keys, probs, threshold, voxels,
                             lambda p: binvox.read_binvox(p).grid)
    print(f"facing the ground truth: {facing} of {len(keys)} (raw v1 grids: {raw})")
    report = "\n".join(lines) + "\nraw v1 grids:\n" + "\n".join(raw_lines)
    assert facing >= MIN_FACING, report
    # The check can tell: ignoring the voxel frame makes a turn win for most images.
    assert raw <= MAX_FACING_RAW, report


# --------------------------------------------------------------------------- foreground model

# The shipped foreground model (backend/weights/foreground.pt) on the 13 held-out photo-style
# renders above and their object masks (class means; see backend.evaluation.foreground). Measured
# on 2026-12-07 when it shipped (the 2026-12-03 model fine-tuned in three rounds of 5 000 steps
# with procedural backgrounds and a fourth with distractors, 1.4 M parameters; the model before
# the distractor round scored 0.736 / 0.740 with this code); re-base only when a new foreground
# model ships.
FOREGROUND_BASELINE = {"mask_iou": 0.7648, "box_iou": 0.7808}
FOREGROUND_MARGIN = 0.03


def test_the_shipped_foreground_model_finds_the_held_out_objects(trees):
    from backend.core.foreground import load_foreground
    from backend.evaluation.foreground import evaluate_foreground

    keys = [f"{m.parent.name}/{m.name}" for m in trees["renders_photo"].glob("*/*")
            if m.is_dir()]
    report = evaluate_foreground(trees["renders_photo"], keys, load_foreground())
    figures = report["class_mean"]
    print(f"foreground on {report['images']} held-out photos: {figures}; "
          f"baseline {FOREGROUND_BASELINE}")
    assert report["images"] == len(ALL_SYNSETS)
    for key, base in FOREGROUND_BASELINE.items():
        assert abs(figures[key] - base) <= FOREGROUND_MARGIN, (key, figures, base)
