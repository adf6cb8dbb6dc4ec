"""The networks, the trainer and its checkpoints, on a tiny data set generated on the fly.

The data set has the real layout (R2N2 renders + binvox voxels + splits.json) and goes through
the real loaders (:mod:`backend.data.datasets`); shapes are boxes whose silhouettes are the images,
so a tiny network can overfit them in a few dozen steps.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from backend.core import checkpoint as ckpt_mod
from backend.core.checkpoint import load_model
from backend.core.config import dataclass_from_args
from backend.data.splits import Splits, save_splits
from backend.models import ModelConfig, Reconstructor, degrees_to_vector, vector_to_degrees
from backend.training.cli import add_train_arguments
from backend.training.config import MODES, TrainConfig
from backend.training.sampler import StepBatchSampler
from backend.training.state import resolve_resume
from backend.training.streams import build_datasets, make_loader
from backend.training.train import train
from synth_render import binvox, r2n2
from synth_render.taxonomy import ALL_SYNSETS

ROOT = Path(__file__).resolve().parents[1]
SUBSET_SIZES = {"source_train": 6, "source_val": 2, "target_train": 4, "test": 2}
VIEWS = 2
# A network small enough to train in well under a second per step on a busy 2-core machine.
TINY_MODEL_FLAGS = ["--model-latent-dim", "32", "--model-enc-channels", "8", "16", "16", "32",
                    "32", "--model-vox-channels", "16", "8", "8", "--model-img-channels", "16",
                    "8", "8", "8", "--model-head-hidden", "16", "--model-disc-hidden", "32"]


# ------------------------------------------------------------------------- tiny data set


def _box_grid(i: int) -> np.ndarray:
    """A box whose extents differ per shape, indexed [x, y, z]."""
    rng = np.random.default_rng(i)
    lo = rng.integers(2, 10, size=3)
    hi = lo + rng.integers(8, 20, size=3)
    grid = np.zeros((32, 32, 32), bool)
    grid[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = True
    return grid


def _silhouette(grid: np.ndarray, colour, photo: bool, rng) -> Image.Image:
    """The grid seen along z (x right, y up), 64 px; photo style gets a noisy background."""
    mask = grid.any(axis=2).T[::-1]  # (y, x), +Y up
    mask = np.kron(mask, np.ones((2, 2), bool))  # 64 x 64
    rgb = np.empty((64, 64, 3), np.uint8)
    rgb[:] = colour
    if photo:
        background = rng.integers(0, 255, size=(64, 64, 3), dtype=np.uint8)
        rgb[~mask] = background[~mask]
        return Image.fromarray(rgb)
    alpha = (mask * 255).astype(np.uint8)
    return Image.fromarray(np.dstack([rgb, alpha]))


def make_tiny_dataset(root: Path) -> Splits:
    """Write a few shapes in the project's layout: splits.json, voxels/, renders_*/."""
    splits, i = Splits(), 0
    for subset, n in SUBSET_SIZES.items():
        for _ in range(n):
            splits.subset(subset).append(f"{ALL_SYNSETS[i % 13]}/shape{i:03d}")
            i += 1
    save_splits(splits, root / "splits.json")
    rng = np.random.default_rng(0)
    styles = {"synthetic": ("source_train", "source_val", "test"),
              "photo": ("target_train", "test")}
    # The markers the project's writers leave first (unmarked trees beside splits.json would
    # be trees from before the R2N2 conventions, which readers refuse).
    r2n2.claim_tree(root / "voxels", r2n2.VOXELS, fill="carve", placement="centred")
    for style in styles:
        r2n2.claim_tree(root / f"renders_{style}", r2n2.RENDERS)
    for index, key in enumerate(k for s in SUBSET_SIZES for k in splits.subset(s)):
        synset, model_id = key.split("/")
        grid = _box_grid(index)
        r2n2.write_voxels(r2n2.voxel_path(root / "voxels", synset, model_id),
                          binvox.Voxels(grid, (-0.5,) * 3, 1.0))
        colour = (40 + 15 * (index % 13), 200 - 10 * (index % 13), 120)
        for style, subsets in styles.items():
            if not any(key in splits.subset(s) for s in subsets):
                continue
            out = r2n2.rendering_dir(root / f"renders_{style}", synset, model_id)
            out.mkdir(parents=True, exist_ok=True)
            views = [r2n2.View(float(45 + 90 * v), 27.0, 0.8) for v in range(VIEWS)]
            for v in range(VIEWS):
                _silhouette(grid, colour, style == "photo", rng).save(
                    out / r2n2.view_file_name(v))
            r2n2.write_index(out, views)
    return splits


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny_data")
    make_tiny_dataset(root)
    return root


def tiny_config(data: Path, runs: Path, mode: str, steps: int, *extra: str) -> TrainConfig:
    """A TrainConfig for the tiny data set, built through the command-line parser."""
    import argparse

    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    return dataclass_from_args(TrainConfig, parser.parse_args(
        tiny_flags(data, runs, mode, steps) + list(extra)))


def tiny_flags(data: Path, runs: Path, mode: str, steps: int, augment: bool = False,
               workers: int = 0) -> list[str]:
    return ["--data", str(data), "--runs", str(runs), "--mode", mode, "--steps", str(steps),
            "--batch-size", "4", "--lr", "3e-3", "--warmup-steps", "2", "--num-workers",
            str(workers), "--threads", "1", "--augment" if augment else "--no-augment",
            "--log-every", "1", "--eval-every", "1000", "--checkpoint-every", "1000",
            *TINY_MODEL_FLAGS]


def read_log(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


# ------------------------------------------------------------------------- models


def test_reconstructor_shapes_and_ranges():
    model = Reconstructor(ModelConfig())
    images = torch.rand(3, 3, 64, 64) * 2 - 1
    out = model(images)
    assert out["voxel_logits"].shape == (3, 32, 32, 32)
    assert out["class_logits"].shape == (3, 13)
    assert out["view"].shape == (3, 2)
    assert ((out["view"][:, 0] >= 0) & (out["view"][:, 0] < 360)).all()
    pred = model.predict(images)
    assert pred["probs"].shape == (3, 32, 32, 32)
    assert 0 <= float(pred["probs"].min()) and float(pred["probs"].max()) <= 1
    assert pred["class_index"].shape == pred["azimuth"].shape == pred["elevation"].shape == (3,)
    assert model.training  # predict restores the mode it found
    n_params = sum(p.numel() for p in model.parameters())
    assert 1_000_000 <= n_params <= 3_000_000


def test_voxel_decoder_64_cubed():
    cfg = ModelConfig(latent_dim=32, enc_channels=(8, 8, 8, 8, 8), vox_channels=(16, 8, 8, 4))
    assert cfg.voxel_size == 64
    assert Reconstructor(cfg)(torch.zeros(1, 3, 64, 64))["voxel_logits"].shape == (1, 64, 64, 64)


def test_residual_blocks_add_depth_but_keep_shapes():
    small = dict(latent_dim=32, enc_channels=(8, 8, 8, 8, 16), vox_channels=(16, 8, 8))
    plain = Reconstructor(ModelConfig(**small))
    deep = Reconstructor(ModelConfig(**small, enc_blocks=2, vox_blocks=1))
    out = deep(torch.rand(2, 3, 64, 64) * 2 - 1)
    assert out["voxel_logits"].shape == (2, 32, 32, 32)
    assert out["z"].shape == (2, 32)
    n_plain = sum(p.numel() for p in plain.parameters())
    assert sum(p.numel() for p in deep.parameters()) > n_plain
    # A config without the fields (older checkpoints) builds the plain network, same names.
    legacy = {k: v for k, v in plain.cfg.to_dict().items()
              if k not in ("enc_blocks", "vox_blocks")}
    rebuilt = Reconstructor(ModelConfig.from_dict(legacy))
    assert rebuilt.state_dict().keys() == plain.state_dict().keys()


def test_view_vector_round_trip_wraps_azimuth():
    view = torch.tensor([[0.0, 25.0], [359.5, 29.9], [180.0, 27.0], [90.25, 26.0]])
    back = vector_to_degrees(degrees_to_vector(view))
    diff = (back - view).abs()
    assert torch.minimum(diff[:, 0], 360 - diff[:, 0]).max() < 1e-3
    assert diff[:, 1].max() < 1e-3


def test_gradient_reversal_flips_and_scales_the_gradient():
    from backend.models import reverse_gradient

    x = torch.ones(3, requires_grad=True)
    y = reverse_gradient(x, 0.25)
    assert torch.equal(y, x)
    (2 * y).sum().backward()
    assert torch.allclose(x.grad, torch.full((3,), -0.5))


def test_model_config_round_trip():
    cfg = ModelConfig(latent_dim=64, vox_channels=(32, 16, 8, 4))
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError):
        ModelConfig.from_dict({**cfg.to_dict(), "bogus": 1})


# ------------------------------------------------------------------------- config and data order


def test_a_config_saved_before_cut_paste_resumes_without_it():
    saved = TrainConfig(mode="unsupervised").to_dict()
    del saved["paste_p"]
    assert TrainConfig.from_dict(saved).paste_p == 0.0
    assert TrainConfig.from_dict(TrainConfig().to_dict()).paste_p == 0.5


def test_cli_flags_build_the_config(tmp_path):
    cfg = tiny_config(tmp_path, tmp_path / "runs", "oracle", 7, "--amp", "--thresholds", "0.3",
                      "0.5")
    assert cfg.mode == "oracle" and cfg.steps == 7 and cfg.amp is True
    assert cfg.thresholds == (0.3, 0.5) and cfg.model.vox_channels == (16, 8, 8)
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert set(MODES) == {"unsupervised", "source-only", "oracle", "no-adversarial",
                          "no-reconstruction"}


def test_batch_order_is_a_function_of_seed_and_step():
    def take(sampler, n):
        it = iter(sampler)
        return [next(it) for _ in range(n)]

    full = take(StepBatchSampler(10, 3, seed=5), 12)
    assert take(StepBatchSampler(10, 3, seed=5, start_step=7), 5) == full[7:12]
    assert take(StepBatchSampler(10, 3, seed=6), 12) != full
    # Two ranks split each epoch without overlap.
    r0, r1 = (StepBatchSampler(10, 2, seed=1, rank=r, world=2) for r in (0, 1))
    assert not set(sum(take(r0, 2), [])) & set(sum(take(r1, 2), []))
    # A data set smaller than a batch still gives full batches.
    assert all(len(b) == 8 for b in take(StepBatchSampler(3, 8, seed=0), 4))


def test_augmented_batches_are_a_function_of_seed_step_and_rank(tiny_data, tmp_path):
    """Augmentation and cut-paste draws ride on the sampler's indices: a loader started at
    step k (in this process or in a worker) gives the images an uninterrupted one gives at k,
    and loading leaves the global RNG alone."""
    from backend.data.datasets import SeededIndex

    cfg = tiny_config(tiny_data, tmp_path, "unsupervised", 10, "--augment", "--paste-p", "1")
    sets = build_datasets(cfg)

    def images(name, start, n, workers=0, rank=0, world=1):
        it = make_loader(sets[name], dataclasses.replace(cfg, num_workers=workers),
                         ("source", "target").index(name), rank, world, start, False)
        return [next(it)["image"] for _ in range(n)]

    state = torch.get_rng_state()
    for name in ("source", "target"):
        full = images(name, 0, 5)
        for workers in (0, 1):
            assert all(map(torch.equal, images(name, 3, 2, workers), full[3:])), (name, workers)
        rank1 = images(name, 0, 5, rank=1, world=2)
        assert all(map(torch.equal, images(name, 3, 2, 1, rank=1, world=2), rank1[3:])), name
    assert torch.equal(torch.get_rng_state(), state)
    # One item, two seeds: other jitter, shift and background; the same seed: the same image.
    source = sets["source"]
    a, b = (source[SeededIndex(0, (1, 2, 3, s))]["image"] for s in (0, 1))
    assert not torch.equal(a, b)
    assert torch.equal(source[SeededIndex(0, (1, 2, 3, 0))]["image"], a)


# ------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def source_only_run(tiny_data, tmp_path_factory) -> dict:
    runs = tmp_path_factory.mktemp("runs")
    cfg = tiny_config(tiny_data, runs, "source-only", 30)
    return train(cfg)


def _early_late(records: list[dict], key: str) -> tuple[float, float]:
    values = [r[key] for r in records if r["kind"] == "train"]
    return float(np.mean(values[:5])), float(np.mean(values[-5:]))


def test_source_only_overfits_and_writes_the_run_folder(source_only_run):
    run_dir = Path(source_only_run["run_dir"])
    for name in ("config.json", "log.jsonl", "loss_curves.png", "checkpoint.pt", "model.pt"):
        assert (run_dir / name).is_file(), name
    records = read_log(run_dir)
    early, late = _early_late(records, "voxel_bce")
    assert late < 0.8 * early, (early, late)
    evals = [r for r in records if r["kind"] == "eval"]
    assert evals and evals[-1]["step"] == 30
    assert source_only_run["info"].threshold in TrainConfig().thresholds
    assert "recon_source" not in source_only_run["nets"]  # no training-only modules here


def test_unsupervised_trains_all_losses(tiny_data, tmp_path):
    out = train(tiny_config(tiny_data, tmp_path, "unsupervised", 30, "--adv-warmup", "0.2"))
    records = [r for r in read_log(Path(out["run_dir"])) if r["kind"] == "train"]
    for key in ("rec_source", "rec_target", "adv", "d_acc", "voxel_iou", "class_ce"):
        assert key in records[-1], key
    early, late = _early_late(records, "voxel_bce")
    assert late < 0.8 * early, (early, late)
    assert records[0]["adv_coeff"] == 0.0 and records[-1]["adv_coeff"] > 0.0
    assert {"recon_source", "recon_target", "discriminator"} <= set(out["nets"])


def test_unsupervised_target_loader_never_reads_target_voxels(tiny_data, tmp_path, monkeypatch):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    splits = json.loads((data / "splits.json").read_text())
    read = []
    real_read = binvox.read_binvox
    monkeypatch.setattr(binvox, "read_binvox", lambda p: read.append(Path(p)) or real_read(p))
    cfg = tiny_config(data, tmp_path / "runs", "unsupervised", 2)
    sets = build_datasets(cfg)
    target_keys = set(splits["target_train"])
    assert not [p for p in read if f"{p.parent.parent.name}/{p.parent.name}" in target_keys]
    assert set(sets["target"][0]) == {"image", "path"}
    # Source renders are pasted onto the target stream's images (images only, no labels);
    # modes without target images never paste.
    assert sets["source"].backgrounds is sets["target"] and sets["source"].paste_p == 0.5
    for mode in ("source-only", "oracle"):
        assert build_datasets(tiny_config(data, tmp_path / mode, mode, 2))["source"].paste_p == 0
    # With every target voxel file gone, unsupervised training still runs...
    for key in target_keys:
        shutil.rmtree(data / "voxels" / key)
    assert train(cfg)["step"] == 2
    # ... while the oracle, the one mode that reads them, cannot build its data.
    with pytest.raises(ValueError, match="no usable models"):
        build_datasets(tiny_config(data, tmp_path / "runs2", "oracle", 2))


def test_unsupervised_on_a_folder_of_photos(tiny_data, tmp_path):
    photos = tmp_path / "photos" / "nested"
    photos.mkdir(parents=True)
    for i, png in enumerate(sorted((tiny_data / "renders_photo").rglob("*.png"))):
        Image.open(png).convert("RGB").save(photos / f"photo{i}.jpg")
    cfg = tiny_config(tiny_data, tmp_path / "runs", "unsupervised", 2, "--target-images",
                      str(tmp_path / "photos"))
    assert len(build_datasets(cfg)["target"]) == len(list(photos.iterdir()))
    assert train(cfg)["step"] == 2


def test_oracle_and_ablations_run(tiny_data, tmp_path):
    for mode in ("oracle", "no-adversarial", "no-reconstruction"):
        out = train(tiny_config(tiny_data, tmp_path, mode, 2))
        assert out["step"] == 2 and (Path(out["run_dir"]) / "model.pt").is_file()


def test_existing_run_needs_resume(source_only_run):
    cfg = TrainConfig.from_dict(json.loads(
        (Path(source_only_run["run_dir"]) / "config.json").read_text()))
    cfg.resume = False
    with pytest.raises(FileExistsError, match="--resume"):
        train(cfg)


def _copy_run(run: dict, runs: Path, name: str) -> TrainConfig:
    """``run``'s checkpoint under ``runs/name``; returns the config it was trained with."""
    run_dir = runs / name
    run_dir.mkdir(parents=True)
    (run_dir / "checkpoint.pt").write_bytes((Path(run["run_dir"]) / "checkpoint.pt").read_bytes())
    return TrainConfig.from_dict(json.loads((Path(run["run_dir"]) / "config.json").read_text()))


def test_resuming_with_other_steps_says_the_schedule_changes(source_only_run, tmp_path, caplog):
    saved = _copy_run(source_only_run, tmp_path / "runs", "longer")
    cfg = dataclasses.replace(saved, runs=tmp_path / "runs", name="longer", steps=60, resume=True)
    with caplog.at_level("WARNING", logger="backend.training.state"):
        resumed, ckpt = resolve_resume(cfg)
    assert resumed.steps == 60 and int(ckpt["step"]) == 30
    assert "--steps 60 differs from the checkpoint's 30" in caplog.text


def test_resume_without_data_flags_keeps_the_runs_data(source_only_run, tmp_path, caplog):
    trained_on = _copy_run(source_only_run, tmp_path / "runs", "moved").data
    # --data not given again: the run's own data set, not the default one
    resumed, _ = resolve_resume(TrainConfig(runs=tmp_path / "runs", name="moved", resume=True))
    assert resumed.data == trained_on and resumed.target_images is None
    # given and different (the data set moved): used, with a warning naming both
    with caplog.at_level("WARNING", logger="backend.training.state"):
        resumed, _ = resolve_resume(TrainConfig(runs=tmp_path / "runs", name="moved",
                                                resume=True, data=tmp_path / "elsewhere"))
    assert resumed.data == tmp_path / "elsewhere"
    assert f"--data {tmp_path / 'elsewhere'}; the run was trained on {trained_on}" in caplog.text


def test_average_of_snapshots_is_the_mean_model_with_its_own_threshold(source_only_run,
                                                                        tiny_data, tmp_path):
    from backend.cli import main as backend_main
    from backend.core.checkpoint import save_model

    last = Path(source_only_run["run_dir"]) / "model.pt"
    model, info = load_model(last)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    earlier = tmp_path / "model-20.pt"
    save_model(earlier, model, dataclasses.replace(info, step=20))
    out = tmp_path / "averaged.pt"
    assert backend_main(["average", str(earlier), str(last), "--out", str(out),
                         "--data", str(tiny_data), "--device", "cpu"]) == 0
    averaged, avg_info = load_model(out)
    a, b = load_model(earlier)[0].state_dict(), load_model(last)[0].state_dict()
    for key, value in averaged.state_dict().items():
        torch.testing.assert_close(value, (a[key] + b[key]) / 2)
    assert avg_info.step == 30 and avg_info.metrics["averaged_steps"] == [20, 30]
    assert avg_info.threshold in TrainConfig().thresholds
    assert 0.0 <= avg_info.metrics["val_iou"] <= 1.0 and avg_info.mode == "source-only"
    # Snapshots of different networks are refused with a one-line error.
    other = tmp_path / "other.pt"
    save_model(other, Reconstructor(ModelConfig(image_size=info.image_size)), info)
    assert backend_main(["average", str(other), str(last), "--out", str(tmp_path / "x.pt"),
                         "--data", str(tiny_data), "--device", "cpu"]) == 2
    assert not (tmp_path / "x.pt").exists()


def test_a_run_without_loss_scaling_resumes_with_it(source_only_run, tmp_path):
    """A checkpoint saved with the scaler off (CPU, --no-amp) holds an empty scaler state;
    a resumed run with fp16 loss scaling on starts its scaler afresh instead of failing."""
    from backend.training.losses import TrainingNet
    from backend.training.optim import build_optimizers
    from backend.training.state import restore_training_state

    ckpt = torch.load(Path(source_only_run["run_dir"]) / "checkpoint.pt", weights_only=True)
    assert ckpt["scaler"] == {}
    cfg = TrainConfig.from_dict(ckpt["config"])
    net = TrainingNet(cfg)
    opts = build_optimizers(net, cfg)
    scheds = {k: torch.optim.lr_scheduler.LambdaLR(o, lambda s: 1.0) for k, o in opts.items()}

    class EnabledScaler:  # torch's GradScaler cannot be enabled without CUDA
        def is_enabled(self):
            return True

        def load_state_dict(self, state):
            raise AssertionError("an empty scaler state must not be loaded")

    info = restore_training_state(ckpt, net, opts, scheds, EnabledScaler())
    assert info.step == ckpt["model"]["info"]["step"]


def test_cuda_means_this_processs_gpu(monkeypatch):
    from backend.core import device as device_module

    chosen = []
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    assert str(device_module.resolve_device("cuda", 1)) == "cuda:1"
    assert str(device_module.resolve_device("cuda:0", 1)) == "cuda:0"
    assert [str(d) for d in chosen] == ["cuda:1", "cuda:0"]
    assert str(device_module.resolve_device("cpu", 1)) == "cpu"


@pytest.mark.parametrize("flag", ["--log-every", "--eval-every", "--checkpoint-every",
                                  "--batch-size", "--steps"])
def test_zero_counts_are_refused_before_training(tiny_data, tmp_path, flag):
    cfg = tiny_config(tiny_data, tmp_path, "source-only", 2, flag, "0")
    with pytest.raises(ValueError, match=f"{flag} must be at least 1, got 0"):
        train(cfg)
    assert not (tmp_path / "source-only").exists()


def test_unreadable_target_photos_are_skipped(tiny_data, tmp_path, caplog):
    photos = tmp_path / "photos"
    photos.mkdir()
    good = sorted((tiny_data / "renders_photo").rglob("*.png"))[:3]
    for i, png in enumerate(good):
        Image.open(png).convert("RGB").save(photos / f"photo{i}.jpg")
    (photos / "._photo0.jpg").write_bytes(b"\0\5\26\7 AppleDouble")  # macOS metadata
    (photos / ".thumbnails").mkdir()
    Image.open(good[0]).save(photos / ".thumbnails" / "t.png")
    data = (photos / "photo1.jpg").read_bytes()
    (photos / "photo1.jpg").write_bytes(data[:len(data) // 3])  # truncated download
    cfg = tiny_config(tiny_data, tmp_path / "runs", "unsupervised", 3, "--target-images",
                      str(photos))
    target = build_datasets(cfg)["target"]
    assert [p.name for p in target.files] == ["photo0.jpg", "photo1.jpg", "photo2.jpg"]
    with caplog.at_level("WARNING", logger="backend.data.datasets"):
        items = [target[i] for i in range(3)]
        again = target[1]
    assert [Path(it["path"]).name for it in items] == ["photo0.jpg", "photo2.jpg", "photo2.jpg"]
    assert torch.equal(again["image"], items[1]["image"])  # the same stand-in every time
    assert caplog.text.count("photo1.jpg") == 1  # warned once
    assert train(cfg)["step"] == 3


# ------------------------------------------------------------------------- checkpoints


def test_checkpoint_round_trip(source_only_run, tiny_data):
    run_dir = Path(source_only_run["run_dir"])
    trained = source_only_run["nets"]["reconstructor"].eval()
    images = torch.rand(2, 3, 64, 64) * 2 - 1
    expected = trained.predict(images)
    for name in ("model.pt", "checkpoint.pt"):
        raw = torch.load(run_dir / name, map_location="cpu", weights_only=True)
        state = raw["state_dict"] if name == "model.pt" else raw["modules"]["reconstructor"]
        assert not [k for k in state if k.startswith("module.")]
        model, info = load_model(run_dir / name, device="cpu")
        got = model.predict(images)
        for key in expected:
            assert torch.equal(got[key], expected[key]), (name, key)
        assert info.step == 30 and info.mode == "source-only" and info.image_size == 64
        assert info.classes == list(ALL_SYNSETS) and info.config["latent_dim"] == 32
        assert info.threshold == source_only_run["info"].threshold
        assert "val_iou" in info.metrics


def test_load_model_without_default_weights_explains(tmp_path, monkeypatch):
    monkeypatch.setattr(ckpt_mod, "DEFAULT_WEIGHTS", tmp_path / "default.pt")
    with pytest.raises(FileNotFoundError, match="--checkpoint"):
        load_model(None)


def test_resume_after_kill_9_continues_exactly(tiny_data, tmp_path):
    """With augmentation, cut-paste (unsupervised, paste_p 0.5) and a loader worker process:
    every random draw of an item is a function of (seed, step, rank, position), so the steps
    a resumed run redoes see the same images, pixel for pixel, as an uninterrupted run."""
    steps, every = 40, 10
    cfg = tiny_config(tiny_data, tmp_path / "ref", "unsupervised", steps, "--augment",
                      "--num-workers", "1")
    assert cfg.augment and cfg.paste_p == 0.5 and cfg.num_workers == 1
    reference = train(cfg)
    ref_log = {r["step"]: r for r in read_log(Path(reference["run_dir"]))
               if r["kind"] == "train"}

    flags = tiny_flags(tiny_data, tmp_path / "killed", "unsupervised", steps, augment=True,
                       workers=1)
    flags += ["--checkpoint-every", str(every)]
    run_dir = tmp_path / "killed" / "unsupervised"
    proc = subprocess.Popen([sys.executable, "-m", "backend.training", *flags], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / "checkpoint.pt").is_file():
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    saved = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert 0 < saved["step"] < steps

    subprocess.run([sys.executable, "-m", "backend.training", *flags, "--resume"], cwd=ROOT,
                   check=True, capture_output=True, timeout=300)
    records = [r for r in read_log(run_dir) if r["kind"] == "train"]
    assert [r["step"] for r in records] == list(range(1, steps + 1))
    keys = ("loss", "voxel_bce", "rec_source", "rec_target", "adv")
    # Same batches, same augmentation and cut-paste draws, same RNG: the resumed run retraces
    # the reference (to the 6 decimals of the log).
    diverged = [(r["step"], k) for r in records for k in keys if r[k] != ref_log[r["step"]][k]]
    assert not diverged, f"resumed at step {saved['step']}; differs at {diverged[:5]}"
    final = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert final["step"] == steps


# ------------------------------------------------------------------------- DDP


def _ddp_worker(rank: int, world: int, port: int, data: str, runs: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world))
    cfg = tiny_config(Path(data), Path(runs), "unsupervised", 6, "--adv-warmup", "0")
    result = train(cfg)
    state = {f"{n}.{k}": v for n, m in result["nets"].items()
             for k, v in m.state_dict().items()}
    torch.save(state, Path(out) / f"rank{rank}.pt")
    torch.distributed.destroy_process_group()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_gloo_processes_stay_in_sync(tiny_data, tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tiny_data), str(tmp_path / "runs"),
                                str(tmp_path)), nprocs=2, join=True)
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    run_dir = tmp_path / "runs" / "unsupervised"
    assert [r["step"] for r in read_log(run_dir) if r["kind"] == "train"] == list(range(1, 7))
    model, _ = load_model(run_dir / "model.pt")
    assert model.predict(torch.zeros(1, 3, 64, 64))["probs"].shape == (1, 32, 32, 32)


def test_fine_tuning_with_framing_starts_from_the_weights_and_frames_every_stream(
        source_only_run, tiny_data, tmp_path):
    """``--init`` starts from a model.pt (its architecture and threshold); ``--framing``
    frames source renders by alpha (jittered) and target photos by the foreground model's
    cached squares, and the model records that it was trained framed."""
    from backend.core.foreground import save_foreground
    from backend.models.foreground import ForegroundConfig, ForegroundNet

    fg = tmp_path / "fg.pt"
    save_foreground(fg, ForegroundNet(ForegroundConfig(widths=(4, 8, 8))), {"step": 1})
    init = Path(source_only_run["run_dir"]) / "model.pt"
    cfg = tiny_config(tiny_data, tmp_path, "unsupervised", 2, "--init", str(init),
                      "--framing", "--foreground", str(fg), "--augment")
    datasets = build_datasets(cfg)
    assert datasets["source"].autocrop and datasets["val"].autocrop
    assert datasets["target"].squares is not None  # computed by the foreground model
    assert (cfg.run_dir / "target_squares.json").is_file()
    # step 0: exactly the initial weights
    first = train(dataclasses.replace(cfg, steps=1, checkpoint_every=1, eval_every=1))
    _, info = load_model(Path(first["run_dir"]) / "model.pt")
    assert info.framing is True and info.mode == "unsupervised"
    before, _ = load_model(init)
    after = first["nets"]["reconstructor"]
    moved = [torch.dist(p.float(), q.float()).item() for p, q in
             zip(before.state_dict().values(), after.state_dict().values(), strict=True)
             if p.dtype.is_floating_point]
    assert 0 < max(moved) < 1.0  # one small step from the initial weights, not from scratch
