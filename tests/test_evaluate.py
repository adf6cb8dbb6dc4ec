"""evaluate() / python -m backend eval on a tiny generated R2N2 fixture with fake models."""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from backend.data.splits import Splits, save_splits
from backend.evaluation import evaluate as ev
from backend.evaluation import gallery as eval_gallery
from backend.evaluation import reports
from backend.evaluation.gallery import GALLERY_TILE
from synth_render import r2n2
from synth_render.binvox import Voxels
from synth_render.taxonomy import ALL_SYNSETS

CHAIR, TABLE = "03001627", "04379243"
VIEWS = [r2n2.View(30.0, 25.5, 0.7), r2n2.View(350.0, 27.0, 0.9)]
MODELS = {f"{CHAIR}/c1": (4, 20, 8), f"{CHAIR}/c2": (10, 6, 10), f"{TABLE}/t1": (24, 8, 16)}


# --------------------------------------------------------------------------- fixture


def _box_grid(extent: tuple[int, int, int]) -> np.ndarray:
    grid = np.zeros((32, 32, 32), bool)
    lo = [(32 - e) // 2 for e in extent]
    grid[lo[0]:lo[0] + extent[0], lo[1]:lo[1] + extent[1], lo[2]:lo[2] + extent[2]] = True
    return grid


def mark_trees(renders: Path, voxels: Path) -> None:
    """The markers the project's writers leave before writing (a ``splits.json`` beside
    unmarked trees makes them trees from before the R2N2 conventions, which readers refuse)."""
    r2n2.claim_tree(renders, r2n2.RENDERS)
    r2n2.claim_tree(voxels, r2n2.VOXELS, fill="carve", placement="centred")


def _render(seed: int, size: int = 64) -> Image.Image:
    """A coloured blob on transparency, different for every (model, view)."""
    rng = np.random.default_rng(seed)
    rgba = np.zeros((size, size, 4), np.uint8)
    x0, y0 = rng.integers(8, 24, size=2)
    rgba[y0:y0 + 28, x0:x0 + 24] = (*rng.integers(30, 220, size=3), 255)
    return Image.fromarray(rgba, "RGBA")


@pytest.fixture
def r2n2_tree(tmp_path):
    """Renders + voxels for three models (2 chairs, 1 table, 2 views each) and a model
    with renders but no voxels (left out)."""
    renders, voxels = tmp_path / "renders", tmp_path / "voxels"
    mark_trees(renders, voxels)
    for m, (key, extent) in enumerate([*MODELS.items(), (f"{TABLE}/novox", None)]):
        synset, model_id = key.split("/")
        render_dir = r2n2.rendering_dir(renders, synset, model_id)
        render_dir.mkdir(parents=True)
        for i in range(len(VIEWS)):
            _render(10 * m + i).save(render_dir / r2n2.view_file_name(i))
        r2n2.write_index(render_dir, VIEWS)
        if extent is not None:
            r2n2.write_voxels(r2n2.voxel_path(voxels, synset, model_id),
                              Voxels(_box_grid(extent), (-0.5,) * 3, 1.0))
    return renders, voxels


# --------------------------------------------------------------------------- fakes


@dataclass
class FakeInfo:
    threshold: float = 0.5
    image_size: int = 32
    classes: list[str] = field(default_factory=lambda: list(ALL_SYNSETS))
    mode: str = "oracle"
    config: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    step: int = 7


def _digest(image) -> str:
    return hashlib.sha1(np.asarray(image, np.float32).tobytes()).hexdigest()


class TableModel(nn.Module):
    """Answers from a lookup of the dataset's own labels, keyed by the image's bytes.

    ``scale`` multiplies the ground-truth voxels (0.45: perfectly ranked but below 0.5),
    ``class_offset`` shifts the class index, ``azimuth_offset`` the azimuth.
    """

    def __init__(self, dataset, scale=1.0, class_offset=0, azimuth_offset=0.0):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))  # so .to() and .eval() behave as usual
        self.table = {}
        for i in range(len(dataset)):
            item = dataset[i]
            view = np.asarray(item["view"], np.float32)
            self.table[_digest(item["image"])] = (
                torch.as_tensor(np.asarray(item["voxels"], np.float32)) * scale,
                (int(item["class_index"]) + class_offset) % len(ALL_SYNSETS),
                (float(view[0]) + azimuth_offset) % 360.0, float(view[1]))

    def predict(self, images):
        rows = [self.table[_digest(img.cpu().numpy())] for img in images]
        return {"probs": torch.stack([r[0] for r in rows]),
                "class_index": torch.tensor([r[1] for r in rows]),
                "azimuth": torch.tensor([r[2] for r in rows]),
                "elevation": torch.tensor([r[3] for r in rows])}


class ListDataset(torch.utils.data.Dataset):
    """Items given directly (no files): the shape of backend.data.datasets's items."""

    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def _items(n_per_class=2):
    items = []
    for c, synset in enumerate((CHAIR, TABLE)):
        for k in range(n_per_class):
            i = len(items)
            image = np.full((3, 8, 8), -1.0, np.float32)
            image[0, 0, 0] = i / 10  # distinct images
            items.append({"image": torch.from_numpy(image),
                          "voxels": torch.from_numpy(_box_grid((6 + 4 * k, 8, 10 + 2 * c))
                                                     .astype(np.float32)),
                          "class_index": torch.tensor(ALL_SYNSETS.index(synset)),
                          "view": torch.tensor([10.0 * i, 25.0]), "key": f"{synset}/m{k}",
                          "view_index": 0})
    return items


# --------------------------------------------------------------------------- evaluate()


def test_perfect_model_scores_one_everywhere():
    dataset = ListDataset(_items())
    result = ev.evaluate(TableModel(dataset), FakeInfo(), dataset, batch_size=3,
                         fscore_points=1024, progress=False)
    assert result["n_images"] == 4
    for mean in ("class_mean", "instance_mean"):
        m = result["metrics"][mean]
        assert m["iou"] == 1.0 and m["ap"] == pytest.approx(1.0)
        assert m["fscore"] > 0.98
        assert m["class_correct"] == 1.0 and m["view_acc30"] == 1.0
        assert m["azimuth_error"] == pytest.approx(0.0, abs=1e-4)
    assert set(result["metrics"]["per_class"]) == {CHAIR, TABLE}
    assert [r["index"] for r in result["records"]] == [0, 1, 2, 3]
    assert result["threshold_sweep"]["0.3"]["class_mean"] == 1.0


def test_underconfident_wrong_class_model_by_hand():
    """Probabilities 0.45 on the true voxels: perfectly ranked (AP 1) but empty at 0.5 (IoU 0,
    F 0) and full at 0.3 / 0.4; every class wrong; azimuth off by 20° -> within 30°."""
    dataset = ListDataset(_items())
    model = TableModel(dataset, scale=0.45, class_offset=1, azimuth_offset=20.0)
    result = ev.evaluate(model, FakeInfo(threshold=0.5), dataset, fscore_points=256,
                         progress=False)
    m = result["metrics"]["class_mean"]
    assert m["iou"] == 0.0 and m["fscore"] == 0.0 and m["ap"] == pytest.approx(1.0)
    assert m["class_correct"] == 0.0
    assert m["azimuth_error"] == pytest.approx(20.0, abs=1e-3)
    assert m["elevation_error"] == pytest.approx(0.0, abs=1e-4)
    assert m["view_acc30"] == 1.0
    sweep = {t: v["class_mean"] for t, v in result["threshold_sweep"].items()}
    assert sweep == {"0.3": 1.0, "0.4": 1.0, "0.5": 0.0}


def test_class_mean_differs_from_image_mean():
    """3 chairs perfect, 1 table empty: class mean 0.5, image mean 0.75."""
    items = _items(n_per_class=2)
    items.insert(0, {**items[0], "key": f"{CHAIR}/extra"})
    items[0]["image"] = items[0]["image"].clone()
    items[0]["image"][0, 0, 1] = 0.5
    dataset = ListDataset(items[:4])  # 3 chairs, 1 table
    model = TableModel(dataset)
    table = next(d for d in model.table if model.table[d][1] == ALL_SYNSETS.index(TABLE))
    model.table[table] = (model.table[table][0] * 0, *model.table[table][1:])
    result = ev.evaluate(model, FakeInfo(), dataset, fscore_points=256, progress=False)
    assert result["metrics"]["class_mean"]["iou"] == pytest.approx(0.5)
    assert result["metrics"]["instance_mean"]["iou"] == pytest.approx(0.75)


def test_evaluate_restores_training_mode():
    dataset = ListDataset(_items(1))
    model = TableModel(dataset).train()
    ev.evaluate(model, FakeInfo(), dataset, fscore_points=64, progress=False)
    assert model.training


# --------------------------------------------------------------------------- the command


def test_list_models_needs_renders_and_voxels(r2n2_tree):
    assert ev.list_models(*r2n2_tree) == sorted(MODELS)


def _run(tmp_path, r2n2_tree, **kw):
    from backend.data.datasets import RenderVoxelDataset

    renders, voxels = r2n2_tree
    cfg = ev.EvalConfig(out=tmp_path / "eval", renders=renders, voxels=voxels, gallery=0,
                        device="cpu", fscore_points=512, **kw)

    def load_model(path, device):
        dataset = RenderVoxelDataset(renders, voxels, MODELS, size=FakeInfo().image_size)
        return TableModel(dataset), FakeInfo()

    return cfg, ev.run_eval(cfg, load_model=load_model)


def test_run_eval_writes_report_json_and_markdown(tmp_path, r2n2_tree):
    cfg, rc = _run(tmp_path, r2n2_tree)
    assert rc == 0
    report = json.loads((cfg.out / "report.json").read_text())
    assert report["n_images"] == 6 and report["dataset"]["models"] == 3
    assert report["dataset"]["models_per_class"] == {CHAIR: 2, TABLE: 1}
    assert report["checkpoint"]["default_weights"] and report["checkpoint"]["step"] == 7
    assert report["config"]["renders"] == str(r2n2_tree[0])
    m = report["metrics"]["class_mean"]
    assert m["iou"] == 1.0 and m["ap"] == pytest.approx(1.0) and m["fscore"] > 0.98
    assert m["class_correct"] == 1.0
    views = sorted({(r["gt_azimuth"], r["view_index"]) for r in report["records"]})
    assert views == [(30.0, 0), (350.0, 1)]
    md = (cfg.out / "report.md").read_text()
    assert "| chair (03001627) | 4 | 1.000 | 1.000 |" in md
    assert "**mean over classes**" in md and "IoU at thresholds 0.3 / 0.4 / 0.5" in md


def test_run_eval_with_split_takes_the_subset(tmp_path, r2n2_tree):
    split = tmp_path / "splits.json"
    save_splits(Splits(test=[f"{CHAIR}/c1", f"{TABLE}/t1", f"{TABLE}/missing"]), split)
    cfg, rc = _run(tmp_path, r2n2_tree, split=split, subset="test")
    assert rc == 0
    report = json.loads((cfg.out / "report.json").read_text())
    assert report["dataset"]["models"] == 2 and report["n_images"] == 4


def test_subset_without_split_is_refused(tmp_path, r2n2_tree, caplog):
    # Without a split every model in the trees would be scored, training shapes included.
    cfg, rc = _run(tmp_path, r2n2_tree, subset="test")
    assert rc == 2 and "needs --split" in caplog.text
    assert not (cfg.out / "report.json").exists()


def test_eval_parser_registers_the_command(tmp_path):
    parser = argparse.ArgumentParser()
    ev.add_eval_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["eval", "--renders", "r", "--voxels", "v", "--out", str(tmp_path),
                              "--gallery", "4", "--device", "cpu"])
    assert (args.command, args.renders, args.gallery, args.checkpoint) == \
        ("eval", Path("r"), 4, None)
    assert callable(args.func)


# --------------------------------------------------------------------------- comparison


def test_domain_adaptation_gain():
    assert reports.domain_adaptation_gain(0.5, 0.4, 0.6) == pytest.approx(0.5)
    assert reports.domain_adaptation_gain(0.3, 0.4, 0.6) == pytest.approx(-0.5)
    assert reports.domain_adaptation_gain(0.5, 0.6, 0.6) is None  # no gap to close
    assert reports.domain_adaptation_gain(0.5, 0.7, 0.6) is None
    assert reports.domain_adaptation_gain(None, 0.4, 0.6) is None


def _fake_report(path: Path, mode: str, iou: float) -> Path:
    metrics = {"class_mean": {"iou": iou, "ap": 0.5, "fscore": iou / 2, "class_correct": 1.0,
                              "view_acc30": None},
               "per_class": {CHAIR: {"iou": iou}}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"checkpoint": {"mode": mode}, "dataset": {"kind": "renders"},
                                "metrics": metrics}))
    return path


def test_compare_reports_mean_std_and_gain(tmp_path):
    paths = [_fake_report(tmp_path / f"{mode}{seed}/report.json", mode, iou)
             for mode, ious in (("source-only", (0.3, 0.5)), ("unsupervised", (0.5, 0.5)),
                                ("oracle", (0.7, 0.7)), ("no-adversarial", (0.4, 0.4)))
             for seed, iou in enumerate(ious)]
    out = tmp_path / "cmp"
    args = argparse.ArgumentParser()
    ev.add_eval_parser(args.add_subparsers())
    parsed = args.parse_args(["eval", "--compare", *map(str, paths), "--out", str(out)])
    assert parsed.func(parsed) == 0
    comparison = json.loads((out / "comparison.json").read_text())
    src = comparison["groups"]["source-only"]["class_mean"]["iou"]
    assert src["mean"] == pytest.approx(0.4) and src["std"] == pytest.approx(0.1414, abs=1e-4)
    assert comparison["domain_adaptation_gain"]["iou"] == pytest.approx((0.5 - 0.4) / 0.3)
    groups = comparison["groups"]
    assert groups["no-adversarial"]["gain"]["iou"] == pytest.approx(0.0)  # every adapted group
    assert "gain" not in groups["source-only"] and "gain" not in groups["oracle"]
    assert comparison["same_data"]
    md = (out / "comparison.md").read_text()
    assert "| source-only | 2 | 0.400 ± 0.141 |" in md and "Domain-adaptation gain" in md
    assert "- unsupervised: IoU 0.33" in md and "- no-adversarial: IoU 0.00" in md
    # No gain where the domain has no real gap (oracle − source-only IoU below 0.10).
    close = [_fake_report(tmp_path / f"close-{m}/report.json", m, iou)
             for m, iou in (("source-only", 0.50), ("unsupervised", 0.48), ("oracle", 0.52))]
    flat = reports.compare_reports(close)
    assert flat["domain_adaptation_gain"] is None
    assert "gain" not in flat["groups"]["unsupervised"]
    assert "Domain-adaptation gain" not in reports.comparison_markdown(flat)
    # Reports of different data sets (a photo-style and a synthetic one) give no gain.
    other = json.loads(paths[-3].read_text()) | {"dataset": {"kind": "pix3d"}}
    (tmp_path / "oracle-pix3d.json").write_text(json.dumps(other))
    mixed = reports.compare_reports([*paths[:5], tmp_path / "oracle-pix3d.json"])
    assert not mixed["same_data"] and mixed["domain_adaptation_gain"] is None
    # LABEL=path overrides the checkpoint's mode.
    relabelled = reports.compare_reports([f"mine={paths[0]}"])
    assert list(relabelled["groups"]) == ["mine"] and relabelled["domain_adaptation_gain"] is None


# --------------------------------------------------------------------------- gallery


def test_select_gallery_is_deterministic_and_bounded():
    records = [{"index": i, "class": c, "iou": iou}
               for i, (c, iou) in enumerate([("a", 0.1), ("a", 0.5), ("a", 0.9), ("a", 0.7),
                                             ("b", 0.2), ("b", 0.4)])]
    picked = eval_gallery.select_gallery(records, 3)
    # a: median 0.7, best 0.9; b: median 0.4 (then best 0.4 is the same record).
    assert [r["index"] for r in picked] == [2, 3, 5]
    assert len(eval_gallery.select_gallery(records, 100)) == 5  # every distinct median/best/worst
    assert eval_gallery.select_gallery(records, 3) == picked


@pytest.mark.blender
def test_gallery_png_is_rendered(tmp_path, r2n2_tree):
    from backend.data.datasets import RenderVoxelDataset

    renders, voxels = r2n2_tree
    dataset = RenderVoxelDataset(renders, voxels, MODELS, size=32)
    model = TableModel(dataset)
    result = ev.evaluate(model, FakeInfo(), dataset, fscore_points=64, progress=False)
    path = tmp_path / "gallery.png"
    shown = eval_gallery.render_gallery(model, FakeInfo(), dataset, result["records"], path,
                                        n=2, renders=renders, render_workers=1)
    assert len(shown) == 2 and all(s["prediction_rendered"] for s in shown)
    with Image.open(path) as sheet:
        assert sheet.size == (150 + 3 * (GALLERY_TILE + 4), 22 + 2 * (GALLERY_TILE + 4))
        pixels = np.asarray(sheet.convert("L"))
    tile = pixels[22:22 + GALLERY_TILE, 150 + GALLERY_TILE + 4:][:, :GALLERY_TILE]
    assert tile.std() > 5  # the prediction tile shows a rendered mesh, not a blank


def test_run_eval_with_a_real_checkpoint(tmp_path, r2n2_tree):
    """The real load_model + Reconstructor.predict path (random weights: figures in range)."""
    from backend.core.checkpoint import ModelInfo, save_model
    from backend.models import ModelConfig, Reconstructor

    torch.manual_seed(0)
    model_path = tmp_path / "model.pt"
    save_model(model_path, Reconstructor(ModelConfig(image_size=32)),
               ModelInfo(threshold=0.4, image_size=32, mode="source-only"))
    renders, voxels = r2n2_tree
    cfg = ev.EvalConfig(out=tmp_path / "eval", checkpoint=model_path, renders=renders,
                        voxels=voxels, gallery=0, device="cpu", fscore_points=256)
    assert ev.run_eval(cfg) == 0
    report = json.loads((cfg.out / "report.json").read_text())
    assert report["checkpoint"]["mode"] == "source-only" and report["threshold"] == 0.4
    m = report["metrics"]["instance_mean"]
    assert 0.0 <= m["iou"] <= 1.0 and 0.0 <= m["ap"] <= 1.0 and m["n"] == 6


def test_run_eval_missing_checkpoint_is_a_clear_error(tmp_path, r2n2_tree, caplog):
    renders, voxels = r2n2_tree
    cfg = ev.EvalConfig(out=tmp_path / "eval", checkpoint=tmp_path / "nope.pt",
                        renders=renders, voxels=voxels, gallery=0, device="cpu")
    assert ev.run_eval(cfg) == 2
    assert "does not exist" in caplog.text


@pytest.mark.parametrize("content", [b"not a checkpoint\n", bytes(range(256)) * 8])
def test_run_eval_unreadable_checkpoint_is_a_clear_error(tmp_path, r2n2_tree, caplog, content):
    renders, voxels = r2n2_tree
    bad = tmp_path / "bad.pt"
    bad.write_bytes(content)
    cfg = ev.EvalConfig(out=tmp_path / "eval", checkpoint=bad, renders=renders,
                        voxels=voxels, gallery=0, device="cpu")
    assert ev.run_eval(cfg) == 2
    assert f"{bad}: not a readable checkpoint" in caplog.text


def test_run_eval_scores_a_64_cubed_model_against_64_cubed_grids(tmp_path, r2n2_tree):
    """Ground truth is read at the model's resolution: 32³ grids of the same tree would be
    skipped, 64³ ones are scored."""
    from backend.core.checkpoint import ModelInfo, save_model
    from backend.models import ModelConfig, Reconstructor

    renders, voxels = r2n2_tree
    voxels64 = tmp_path / "voxels64"
    r2n2.claim_tree(voxels64, r2n2.VOXELS, fill="carve", placement="centred")
    for key, extent in MODELS.items():
        grid = np.kron(_box_grid(extent), np.ones((2, 2, 2), dtype=np.uint8)).astype(bool)
        r2n2.write_voxels(r2n2.voxel_path(voxels64, *key.split("/")),
                          Voxels(grid, (-0.5,) * 3, 1.0))
    model_cfg = ModelConfig(image_size=32, vox_channels=(32, 16, 8, 8))
    assert model_cfg.voxel_size == 64
    model_path = tmp_path / "model64.pt"
    save_model(model_path, Reconstructor(model_cfg), ModelInfo(image_size=32, mode="oracle"))
    for tree, rc in ((voxels, 2), (voxels64, 0)):
        cfg = ev.EvalConfig(out=tmp_path / f"eval-{tree.name}", checkpoint=model_path,
                            renders=renders, voxels=tree, gallery=0, device="cpu",
                            fscore_points=64)
        assert ev.run_eval(cfg) == rc
    report = json.loads((tmp_path / "eval-voxels64" / "report.json").read_text())
    assert report["metrics"]["instance_mean"]["n"] == 6
