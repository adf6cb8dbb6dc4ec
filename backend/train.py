"""``python -m backend train``: train the image -> voxel network in one of five modes.

Modes share the architecture, preprocessing, augmentation and number of steps; only the losses
and the data differ (``MODES``):

- ``source-only``: E + G + heads on source pairs (synthetic renders + voxels).
- ``unsupervised`` (Wang & Fang): source pairs as above, plus unlabelled target images (photo
  renders of ``target_train``, images only) through the same encoder; an image decoder per
  domain reconstructs each domain's images from z, and a latent discriminator D, behind a
  gradient-reversal layer, pushes E to make source and target codes indistinguishable.
  With probability ``paste_p`` a source render is pasted over a crop of a random target image
  instead of white (cut-paste): the source pairs then show the target's surroundings, the
  most visible difference between the domains, with shape labels (a latent adversary alone
  only asks E to hide the difference, not how).
- ``no-adversarial`` / ``no-reconstruction``: ``unsupervised`` minus that loss.
- ``oracle``: supervised on target pairs (photo renders WITH voxels) plus source pairs -- the
  upper bound and the only mode that reads target voxels.

Losses (weights are ``TrainConfig`` fields):

- voxels: BCE + ``w_voxel_iou`` x (1 - soft IoU). 32³ occupancy is imbalanced (most voxels are
  empty); the soft-IoU term is scale-free in the number of filled voxels and optimises the
  metric we report, BCE keeps per-voxel gradients well conditioned early on.
- class: cross-entropy; view: MSE on (cos az, sin az, cos el, sin el). Small weights: they are
  outputs for the Blender add-on, and they also tie z to the object (not its background).
- reconstruction: L1 between each domain's image and its own decoder's output.
- adversarial (DANN): D minimises BCE(source=0, target=1) on ``reverse_gradient(z, c)``, so E
  receives ``-c`` x D's gradient in the same backward pass. ``c = w_adv * ramp(p)`` with DANN's
  ``ramp(p) = 2 / (1 + exp(-10 p)) - 1``, ``p`` going 0 -> 1 over the steps after a warm-up of
  ``adv_warmup`` x steps. Why the warm-up: at the start z is noise, and an adversary that can
  already move E would align the domains the cheap way (by throwing information away) before G
  and the decoders have made z carry shape. D itself trains from step 0, so it is informed when
  E starts listening to it.

Threshold: at every evaluation, IoU on ``source_val`` (mean over images) at ``thresholds``; the
best becomes the model's threshold (stored in ``model.pt``). Never chosen on test data.

Run folder ``<runs>/<name>/``: ``config.json``, ``log.jsonl`` (one JSON record per log/eval
step), ``loss_curves.png``, ``checkpoint.pt`` (everything to resume) and ``model.pt`` (what
ships). Checkpoints are atomic; data order is a function of (seed, step) only, so ``--resume``
after ``kill -9`` replays the items the lost steps would have seen, in the same order. Their
augmentation and cut-paste draws are replayed too: each item's come from a generator seeded
by (seed, stream, rank, step, position in batch), whichever loader worker loads it, and the
global RNG (dropout) is restored from the checkpoint, so a resumed run retraces an
uninterrupted one. Resuming with another ``--steps`` recomputes the learning-rate schedule and
the adversarial ramp for the new length (a warning says so).

Multi-process: ``torchrun --nproc_per_node N -m backend train ...`` (gloo on CPU, nccl on CUDA);
``batch_size`` is per process and per domain; only rank 0 writes files.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import time
import typing
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from synth_render.atomic import atomic_path, atomic_write_text
from synth_render.taxonomy import ALL_SYNSETS

from .checkpoint import (
    ModelInfo,
    atomic_save,
    clean_state_dict,
    load_checkpoint_file,
    model_payload,
    rng_state,
    set_rng_state,
)
from .dataclass_args import add_dataclass_arguments, arg, dataclass_from_args
from .models import ModelConfig, build_training_modules, degrees_to_vector, reverse_gradient
from .models.heads import azimuth_error

log = logging.getLogger(__name__)

# What each mode trains on: the target stream ("images": unlabelled, "pairs": with voxels) and
# which training-only losses it uses.
MODES: dict[str, dict] = {
    "unsupervised": {"target": "images", "reconstruction": True, "adversarial": True},
    "no-adversarial": {"target": "images", "reconstruction": True, "adversarial": False},
    "no-reconstruction": {"target": "images", "reconstruction": False, "adversarial": True},
    "source-only": {"target": None, "reconstruction": False, "adversarial": False},
    "oracle": {"target": "pairs", "reconstruction": False, "adversarial": False},
}
CHECKPOINT_VERSION = 1
# Fields a resumed run takes from the command line; all others come from the checkpoint.
OPERATIONAL = ("data", "target_images", "runs", "name", "steps", "resume", "device", "amp",
               "threads", "num_workers", "log_every", "eval_every", "checkpoint_every")
# Fields added after runs were saved: a config without them gets the value that means "off",
# so an older run resumes (and reports) as it was trained, not with today's default.
ADDED_LATER = {"paste_p": 0.0, "framing": False, "init": None}
# First word of every item seed (StepBatchSampler.item_seed): those streams stay apart from
# any other SeedSequence a future change derives from the run seed.
ITEM_SEED_TAG = 0x17E4


@dataclass
class TrainConfig:
    """Everything a training run depends on (saved in config.json and every checkpoint)."""

    data: Path = arg(Path("data/procedural"), "data set root (splits.json, renders_*, voxels)")
    target_images: Path | None = arg(None, "unlabelled target photos (any folder tree of "
                                     "JPEG/PNG) instead of the data set's target_train renders")
    runs: Path = arg(Path("runs"), "folder of run folders")
    name: str = arg("", "run folder name under --runs (default: the mode)")
    mode: str = arg("unsupervised", f"one of {', '.join(MODES)}")
    steps: int = arg(5000, "optimizer steps in total")
    batch_size: int = arg(32, "images per domain per step, per process")
    lr: float = arg(5e-4, "peak learning rate of E, G, heads and image decoders (Adam)")
    disc_lr: float = arg(5e-4, "peak learning rate of the latent discriminator")
    warmup_steps: int = arg(100, "linear learning-rate warm-up")
    min_lr_ratio: float = arg(0.1, "cosine decay ends at this fraction of the peak")
    grad_clip: float = arg(5.0, "gradient-norm clip per optimizer (0: off)")
    w_voxel_iou: float = arg(0.5, "weight of the soft-IoU voxel loss (BCE has weight 1)")
    w_class: float = arg(0.1, "weight of the class cross-entropy")
    w_view: float = arg(0.1, "weight of the viewpoint regression")
    w_rec: float = arg(0.5, "weight of the per-domain image reconstruction L1")
    # 0.5, not 0.1: chosen without target labels. At 0.1 D still told the domains apart 72 % of
    # the time at the end; at 0.5, 58 %, for the same source_val IoU (0.500 vs 0.505).
    w_adv: float = arg(0.5, "final gradient-reversal coefficient for the encoder")
    adv_warmup: float = arg(0.1, "fraction of steps before the encoder feels the adversary")
    paste_p: float = arg(0.5, "modes with target images: chance that a source render is "
                              "pasted over a crop of a random target image instead of white")
    seed: int = arg(0, "seed of weights, data order and augmentation")
    image_size: int = arg(64, "network input side in pixels")
    augment: bool = arg(True, "colour jitter and small shifts on training images")
    val_views: int = arg(2, "views per source_val shape used for validation")
    thresholds: tuple[float, ...] = arg((0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6),
                                        "occupancy thresholds swept on source_val")
    device: str = arg("auto", "auto (cuda when available), cpu, cuda, cuda:N")
    amp: bool | None = arg(None, "mixed precision (default: on for cuda)")
    threads: int = arg(0, "torch CPU threads per process (0: cores / local processes; "
                          "fewer when another job shares the CPU)")
    num_workers: int = arg(1, "data-loading worker processes per stream")
    log_every: int = arg(10, "steps between training log records")
    eval_every: int = arg(250, "steps between validations (also at every checkpoint, so a "
                                "saved model carries its own threshold)")
    checkpoint_every: int = arg(250, "steps between checkpoints (and always at the end)")
    resume: bool = arg(False, "continue from <run>/checkpoint.pt")
    init: Path | None = arg(None, "start from these weights (a model.pt, e.g. the shipped "
                                  "ones; its architecture replaces --model-*): fine-tuning")
    framing: bool = arg(False, "frame every image as the daemon does: renders by their alpha, "
                               "target photos by the foreground model's squares (cached)")
    framing_jitter: float = arg(0.15, "with --framing: scale (log) and shift jitter of the "
                                      "training squares, as crop errors")
    foreground: str = arg("shipped", "with --framing: the framing model for target photos "
                                     "(shipped, none or a path)")
    model: ModelConfig = arg(ModelConfig(), "architecture")

    @property
    def run_dir(self) -> Path:
        return Path(self.runs) / (self.name or self.mode)

    def check(self) -> None:
        """Raise ``ValueError`` for settings that would fail later, mid-run."""
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; expected one of {', '.join(MODES)}")
        for name in ("steps", "batch_size", "log_every", "eval_every", "checkpoint_every",
                     "val_views", "image_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1, "
                                 f"got {getattr(self, name)}")

    def to_dict(self) -> dict:
        """JSON- and ``weights_only``-safe dict."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "model"}
        out = {k: str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v
               for k, v in out.items()}
        out["model"] = self.model.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        hints = typing.get_type_hints(cls)
        kwargs = {}
        for f in fields(cls):
            if f.name not in data:
                if f.name in ADDED_LATER:
                    kwargs[f.name] = ADDED_LATER[f.name]
                continue
            value = data[f.name]
            if f.name == "model":
                value = ModelConfig.from_dict(value)
            elif hints[f.name] in (Path, Path | None) and value is not None:
                value = Path(value)
            elif isinstance(value, list):
                value = tuple(value)
            kwargs[f.name] = value
        return cls(**kwargs)


# ------------------------------------------------------------------------ command line

# Model fields derived from TrainConfig (image_size) or the class list, not flags of their own.
DERIVED_MODEL_FLAGS = ("model_image_size", "model_num_classes")


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Every TrainConfig field as a flag."""
    add_dataclass_arguments(parser, TrainConfig, skip=DERIVED_MODEL_FLAGS,
                            choices={"mode": list(MODES)})


def add_train_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``train`` subcommand (``python -m backend train``)."""
    p = subparsers.add_parser("train", help="train the reconstruction network",
                              description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_train_arguments(p)
    p.set_defaults(func=_cmd_train)
    return p


def _cmd_train(args: argparse.Namespace) -> int:
    train(dataclass_from_args(TrainConfig, args))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m backend.train`` (the same flags as ``python -m backend train``)."""
    parser = argparse.ArgumentParser(prog="python -m backend.train",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true")
    add_train_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return _cmd_train(args)


# ------------------------------------------------------------------------------ data


class StepBatchSampler(Sampler[list[int]]):
    """Endless batches whose content is a function of (seed, step, rank) only.

    Epoch ``e`` is a permutation of the data set drawn from a generator seeded by
    ``(seed, e)`` (several concatenated when the set is smaller than one global batch); rank
    ``r`` of ``world`` takes every ``world``-th index, so ranks never share an item within an
    epoch (unless the set is smaller than one global batch and is repeated). Starting at
    ``start_step`` skips the consumed batches without loading them, which is what makes a
    resumed run see the same batches as an uninterrupted one.

    Indices are :class:`~backend.data.SeededIndex` ints seeded by ``(seed, rank, step,
    position in batch)``: the data sets draw an item's augmentation and cut-paste from that
    seed, not from a process's RNG, so those draws too are the same after a resume, in any
    loader worker, and differ between ranks.
    """

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world: int = 1,
                 start_step: int = 0):
        if n < 1:
            raise ValueError("empty data set")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.world, self.start_step = rank, world, start_step
        self.copies = math.ceil(world * batch_size / n)  # permutations per epoch
        self.per_rank = self.copies * n // world
        self.batches_per_epoch = self.per_rank // batch_size

    def epoch_indices(self, epoch: int) -> list[int]:
        """This rank's indices for ``epoch``."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.cat([torch.randperm(self.n, generator=g) for _ in range(self.copies)])
        return order[self.rank::self.world][:self.per_rank].tolist()

    def item_seed(self, step: int, position: int) -> tuple[int, ...]:
        """Seed of the draws of the ``position``-th item of this rank's batch at ``step``."""
        # SeedSequence takes non-negative ints only (a negative --seed wraps around).
        return (ITEM_SEED_TAG, self.seed % 2 ** 64, self.rank, step, position)

    def __iter__(self) -> Iterator[list[int]]:
        from .data import SeededIndex

        epoch, first = divmod(self.start_step, self.batches_per_epoch)
        while True:
            idx = self.epoch_indices(epoch)
            for b in range(first, self.batches_per_epoch):
                step = epoch * self.batches_per_epoch + b
                yield [SeededIndex(i, self.item_seed(step, j))
                       for j, i in enumerate(idx[b * self.batch_size:(b + 1) * self.batch_size])]
            epoch, first = epoch + 1, 0


def build_datasets(cfg: TrainConfig) -> dict[str, Dataset]:
    """``source`` pairs, the mode's ``target`` stream (or none) and ``val`` (source_val).

    The unsupervised modes' target stream is an :class:`~backend.data.ImageOnlyDataset`: it is
    built from image paths alone and cannot reach target voxels. Only ``oracle`` builds a
    paired data set over target shapes.
    """
    from .data import ImageOnlyDataset, RenderVoxelDataset
    from .splits import load_splits

    root = Path(cfg.data)
    splits = load_splits(root / "splits.json")
    synthetic, photo, voxels = root / "renders_synthetic", root / "renders_photo", root / "voxels"
    size, res = cfg.image_size, cfg.model.voxel_size  # grids of another size are skipped
    sets: dict[str, Dataset] = {}
    target = MODES[cfg.mode]["target"]
    if target == "images" and cfg.target_images is not None:
        sets["target"] = ImageOnlyDataset.from_folder(cfg.target_images, size,
                                                      augment=cfg.augment)
    elif target == "images":
        sets["target"] = ImageOnlyDataset.from_r2n2(photo, splits.target_train, size,
                                                    augment=cfg.augment)
    if cfg.framing and isinstance(sets.get("target"), ImageOnlyDataset):
        from .foreground import cached_squares, load_segmenter

        squares = cached_squares(sets["target"].files, load_segmenter(cfg.foreground),
                                 cfg.run_dir / "target_squares.json")
        sets["target"].use_framing(squares, cfg.framing_jitter)
    elif target == "pairs":
        segmenter = None
        if cfg.framing:
            from .foreground import load_segmenter

            segmenter = load_segmenter(cfg.foreground)
        sets["target"] = RenderVoxelDataset(photo, voxels, splits.target_train, size,
                                            augment=cfg.augment, voxel_res=res,
                                            autocrop=cfg.framing, segmenter=segmenter,
                                            framing_jitter=cfg.framing_jitter)
    # Unsupervised modes also paste source renders onto their (unlabelled) target images.
    backgrounds = sets["target"] if target == "images" and cfg.paste_p > 0 else None
    sets["source"] = RenderVoxelDataset(synthetic, voxels, splits.source_train, size,
                                        augment=cfg.augment, backgrounds=backgrounds,
                                        paste_p=cfg.paste_p if backgrounds is not None else 0.0,
                                        voxel_res=res, autocrop=cfg.framing,
                                        framing_jitter=cfg.framing_jitter)
    sets["val"] = RenderVoxelDataset(synthetic, voxels, splits.source_val, size,
                                     views=cfg.val_views, voxel_res=res, autocrop=cfg.framing)
    return sets


def make_loader(dataset: Dataset, cfg: TrainConfig, stream: int, rank: int, world: int,
                start_step: int, pin: bool) -> Iterator[dict]:
    """Endless iterator of collated batches for one stream (0 = source, 1 = target)."""
    seed = cfg.seed * 7919 + stream  # each stream its own order
    sampler = StepBatchSampler(len(dataset), cfg.batch_size, seed, rank, world, start_step)
    # Augmentation and cut-paste draw from each item's seed (the sampler's SeededIndex), not
    # from the worker RNG. The loader still gets its own generator: creating the iterator
    # draws the workers' base seed, which must not come from (and shift) the global RNG.
    gen = torch.Generator().manual_seed((seed * 1_000_003 + rank) * 1_000_003 + start_step)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=cfg.num_workers,
                        pin_memory=pin, generator=gen,
                        persistent_workers=cfg.num_workers > 0)
    return iter(loader)


# ------------------------------------------------------------------------------ losses


def voxel_losses(logits: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """BCE and soft-IoU loss of ``(B, R, R, R)`` logits against {0, 1} occupancy."""
    logits = logits.float()
    probs = torch.sigmoid(logits)
    inter = (probs * target).flatten(1).sum(1)  # (B,)
    union = (probs + target - probs * target).flatten(1).sum(1)  # (B,)
    return {"voxel_bce": F.binary_cross_entropy_with_logits(logits, target),
            "voxel_iou": (1.0 - (inter + 1.0) / (union + 1.0)).mean()}


def adversarial_ramp(step: int, cfg: TrainConfig) -> float:
    """Gradient-reversal coefficient at ``step``: 0 during warm-up, then DANN's ramp to w_adv
    (always 0 in modes without an adversary, so their logs don't show a phantom ramp)."""
    if not MODES[cfg.mode]["adversarial"]:
        return 0.0
    start = cfg.adv_warmup * cfg.steps
    if step < start:
        return 0.0
    p = (step - start) / max(1.0, cfg.steps - start)
    return cfg.w_adv * (2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0)


class TrainingNet(nn.Module):
    """All modules of a mode, and one forward pass that returns the total loss and its parts
    (one module, so that DDP can wrap it and all-reduce every gradient in one go)."""

    def __init__(self, cfg: TrainConfig):
        super().__init__()
        self.cfg = cfg
        flags = MODES[cfg.mode]
        self.nets = build_training_modules(cfg.model, flags["reconstruction"],
                                           flags["adversarial"])

    def forward(self, source: dict, target: dict | None, adv_coeff: float):
        cfg, nets = self.cfg, self.nets
        n_src = source["image"].shape[0]
        images = source["image"] if target is None else torch.cat([source["image"],
                                                                   target["image"]])
        # One encoder pass over both domains (GroupNorm: no batch statistics to mix).
        z = nets["reconstructor"].encoder(images)  # (B_src + B_tgt, latent)
        z_src, z_tgt = z[:n_src], z[n_src:]
        supervised = [source] + ([target] if "voxels" in (target or {}) else [])
        z_sup = z if len(supervised) == 2 else z_src
        parts = self._supervised(z_sup, {k: torch.cat([b[k] for b in supervised])
                                         for k in ("voxels", "class_index", "view")})
        loss = (parts["voxel_bce"] + cfg.w_voxel_iou * parts["voxel_iou"]
                + cfg.w_class * parts["class_ce"] + cfg.w_view * parts["view_mse"])
        if "recon_source" in nets:
            parts["rec_source"] = F.l1_loss(nets["recon_source"](z_src).float(),
                                            source["image"])
            parts["rec_target"] = F.l1_loss(nets["recon_target"](z_tgt).float(),
                                            target["image"])
            loss = loss + cfg.w_rec * (parts["rec_source"] + parts["rec_target"])
        if "discriminator" in nets:
            logits = nets["discriminator"](reverse_gradient(z, adv_coeff)).float()  # (B,)
            domain = torch.cat([torch.zeros(n_src), torch.ones(len(z) - n_src)]).to(z.device)
            parts["adv"] = F.binary_cross_entropy_with_logits(logits, domain)
            parts["d_acc"] = ((logits > 0).float() == domain).float().mean().detach()
            loss = loss + parts["adv"]  # D minimises this; E gets -adv_coeff x its gradient
        parts["loss"] = loss
        return loss, {k: v.detach() for k, v in parts.items()}

    def _supervised(self, z: torch.Tensor, batch: dict) -> dict[str, torch.Tensor]:
        out = self.nets["reconstructor"].decode(z)
        parts = voxel_losses(out["voxel_logits"], batch["voxels"])
        parts["class_ce"] = F.cross_entropy(out["class_logits"].float(), batch["class_index"])
        parts["view_mse"] = F.mse_loss(out["view_vec"].float(), degrees_to_vector(batch["view"]))
        return parts


# ------------------------------------------------------------------------------ validation


@torch.no_grad()
def validate(model: nn.Module, dataset: Dataset, thresholds, device: torch.device,
             batch_size: int = 64) -> dict:
    """IoU per threshold (mean over images), best threshold, class accuracy and median
    azimuth error on a paired data set (source_val)."""
    from .metrics import voxel_iou

    ious = defaultdict(list)
    correct, az_err = [], []
    # Own generator: creating a loader draws a seed, and validation must not shift the training
    # RNG stream (results would otherwise depend on how often one validates).
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False,
                        generator=torch.Generator())
    for batch in loader:
        out = model.predict(batch["image"].to(device))
        probs, gt = out["probs"].cpu(), batch["voxels"]
        for t in thresholds:
            ious[float(t)].extend(voxel_iou(probs, gt, float(t)).tolist())
        correct.extend((out["class_index"].cpu() == batch["class_index"]).tolist())
        az_err.extend(azimuth_error(out["azimuth"].cpu(), batch["view"][:, 0]).tolist())
    sweep = {t: sum(v) / len(v) for t, v in ious.items()}
    best = max(sweep, key=lambda t: (sweep[t], -abs(t - 0.5)))  # ties -> nearer 0.5
    return {"val_iou": sweep[best], "threshold": best,
            "val_sweep": {f"{t:.2f}": round(v, 5) for t, v in sweep.items()},
            "val_class_acc": sum(correct) / len(correct),
            "val_az_err_median": float(torch.tensor(az_err).median())}


# ------------------------------------------------------------------------------ run folder


class RunLog:
    """``log.jsonl`` (append, one record a line) and the loss-curve figure; rank 0 only."""

    def __init__(self, run_dir: Path, enabled: bool):
        self.path, self.png = run_dir / "log.jsonl", run_dir / "loss_curves.png"
        self.enabled = enabled
        self.records: list[dict] = []

    def restore(self, up_to_step: int) -> None:
        """Keep the records of steps <= ``up_to_step`` (a resumed run redoes the later ones)
        and drop a torn last line from a killed run."""
        if not self.enabled or not self.path.is_file():
            return
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if rec.get("step", 0) <= up_to_step:
                kept.append(rec)
        self.records = kept
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        self.records.append(record)
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def plot(self) -> None:
        """Refresh ``loss_curves.png`` (training losses, validation IoU, adversary)."""
        if not self.enabled or not self.records:
            return
        # The object API, not pyplot: no global backend switch, no figure registry to leak.
        from matplotlib.figure import Figure

        train = [r for r in self.records if r["kind"] == "train"]
        evals = [r for r in self.records if r["kind"] == "eval"]
        fig = Figure(figsize=(15, 4))
        axes = fig.subplots(1, 3)
        for key in ("loss", "voxel_bce", "voxel_iou", "class_ce", "view_mse", "rec_source",
                    "rec_target", "adv"):
            pts = [(r["step"], r[key]) for r in train if key in r]
            if pts:
                axes[0].plot(*zip(*pts, strict=True), label=key)
        axes[0].set(xlabel="step", ylabel="loss", yscale="log", title="training losses")
        axes[0].legend(fontsize=7)
        if evals:
            axes[1].plot([r["step"] for r in evals], [r["val_iou"] for r in evals], "o-")
        axes[1].set(xlabel="step", ylabel="IoU", title="source_val IoU (best threshold)")
        for key in ("d_acc", "adv_coeff"):
            pts = [(r["step"], r[key]) for r in train if key in r]
            if pts:
                axes[2].plot(*zip(*pts, strict=True), label=key)
        axes[2].set(xlabel="step", title="adversary")
        axes[2].legend(fontsize=7)
        fig.tight_layout()
        with atomic_path(self.png) as tmp:
            fig.savefig(tmp, dpi=80, format="png")


# ------------------------------------------------------------------------------ set-up


@dataclass
class Dist:
    """Process-group facts of this process."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: torch.device) -> Dist:
    """Join the process group when started by torchrun (``WORLD_SIZE`` > 1)."""
    env = os.environ
    d = Dist(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)),
             int(env.get("LOCAL_RANK", 0)), int(env.get("LOCAL_WORLD_SIZE",
                                                        env.get("WORLD_SIZE", 1))))
    if d.world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return d


def resolve_device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":  # each torchrun process its own GPU
        name = f"cuda:{local_rank}"
    device = torch.device(name)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def default_threads(local_world: int) -> int:
    """CPU threads per process: the cores shared among the local processes.

    Measured on the 2-core development machine (unsupervised, batch 32): idle, 2 threads and
    one loader worker gave 280 images/s, 1 thread 170; but while a render job kept both cores
    busy, 2 threads made a step 6x slower than 1. On a shared machine pass ``--threads``."""
    return max(1, (os.cpu_count() or 1) // local_world)


def seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to ``min_lr_ratio``."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    p = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1, p)))


def build_optimizers(net: TrainingNet, cfg: TrainConfig) -> dict[str, torch.optim.Optimizer]:
    """``main`` (E, G, heads, image decoders) and, with an adversary, ``disc`` (D)."""
    main = [p for name, m in net.nets.items() if name != "discriminator"
            for p in m.parameters()]
    opts = {"main": torch.optim.Adam(main, lr=cfg.lr)}
    if "discriminator" in net.nets:
        # beta1 = 0.5 as usual for adversaries: less momentum chasing a moving target.
        opts["disc"] = torch.optim.Adam(net.nets["discriminator"].parameters(), lr=cfg.disc_lr,
                                        betas=(0.5, 0.999))
    return opts


# ------------------------------------------------------------------------------ checkpoints


def resolve_resume(cfg: TrainConfig) -> tuple[TrainConfig, dict | None]:
    """The config to run with and the checkpoint to continue from (or ``None``)."""
    path = cfg.run_dir / "checkpoint.pt"
    if not path.is_file():
        if cfg.resume:
            log.info("--resume: no checkpoint at %s, starting from step 0", path)
        return cfg, None
    if not cfg.resume:
        raise FileExistsError(f"{path} exists: pass --resume to continue that run, or choose "
                              "another --name")
    ckpt = load_checkpoint_file(path, "cpu")
    if ckpt.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{path}: checkpoint version {ckpt.get('version')}, "
                         f"expected {CHECKPOINT_VERSION}")
    saved = TrainConfig.from_dict(ckpt["config"])
    changes = {name: getattr(cfg, name) for name in OPERATIONAL}
    for name in ("data", "target_images"):  # not given again: the run's own data
        given, default = getattr(cfg, name), TrainConfig.__dataclass_fields__[name].default
        if given == default:
            changes[name] = getattr(saved, name)
        elif given != getattr(saved, name):
            log.warning("resuming with --%s %s; the run was trained on %s",
                        name.replace("_", "-"), given, getattr(saved, name))
    ignored = [f.name for f in fields(cfg) if f.name not in OPERATIONAL
               and getattr(cfg, f.name) != getattr(saved, f.name)]
    if ignored:
        log.warning("resuming with the checkpoint's %s (command-line values ignored)",
                    ", ".join(ignored))
    resumed = dataclasses.replace(saved, **changes)
    if resumed.steps != saved.steps:
        step = int(ckpt["step"])
        log.warning("--steps %d differs from the checkpoint's %d: the learning-rate schedule and "
                    "the adversarial ramp are recomputed for %d steps (at step %d the learning "
                    "rate goes from %.2f to %.2f of its peak)", resumed.steps, saved.steps,
                    resumed.steps, step, lr_factor(step, saved), lr_factor(step, resumed))
    return resumed, ckpt


def training_state(net: TrainingNet, opts, scheds, scaler, step: int, cfg: TrainConfig,
                   info: ModelInfo) -> dict:
    """Everything needed to resume, plus the shippable model payload."""
    return {
        "version": CHECKPOINT_VERSION, "step": step, "config": cfg.to_dict(),
        "modules": {name: clean_state_dict(m) for name, m in net.nets.items()},
        "optimizers": {k: o.state_dict() for k, o in opts.items()},
        "schedulers": {k: s.state_dict() for k, s in scheds.items()},
        "scaler": scaler.state_dict(), "rng": rng_state(),
        "model": model_payload(net.nets["reconstructor"], info),
    }


def restore_training_state(ckpt: dict, net: TrainingNet, opts, scheds, scaler) -> ModelInfo:
    for name, m in net.nets.items():
        m.load_state_dict(ckpt["modules"][name])
    for k, o in opts.items():
        o.load_state_dict(ckpt["optimizers"][k])
    for k, s in scheds.items():
        s.load_state_dict(ckpt["schedulers"][k])
    if scaler.is_enabled() and ckpt["scaler"]:  # empty when saved by a run without fp16
        scaler.load_state_dict(ckpt["scaler"])
    set_rng_state(ckpt["rng"])
    return ModelInfo(**ckpt["model"]["info"], config=ckpt["model"]["config"])


def save_run(run_dir: Path, state: dict) -> None:
    """``checkpoint.pt`` (to resume) then ``model.pt`` (to ship), each atomically."""
    atomic_save(state, run_dir / "checkpoint.pt")
    atomic_save(state["model"], run_dir / "model.pt")


# ------------------------------------------------------------------------------ training


def train(cfg: TrainConfig, datasets: dict[str, Dataset] | None = None) -> dict:
    """Train (or resume) a run; returns ``{"step", "run_dir", "info", "nets"}`` (``nets``: the
    unwrapped modules). ``datasets`` overrides :func:`build_datasets` (tests)."""
    cfg.check()
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(
        cfg.model, image_size=cfg.image_size, num_classes=len(ALL_SYNSETS)))
    cfg, ckpt = resolve_resume(cfg)
    init = None
    if ckpt is None and cfg.init is not None:  # fine-tuning: the init's architecture
        init = load_checkpoint_file(cfg.init)
        init = init["model"] if "modules" in init else init
        cfg = dataclasses.replace(cfg, model=ModelConfig.from_dict(init["config"]))
        log.info("fine-tuning from %s (step %s)", cfg.init, init["info"].get("step"))
    device = resolve_device(cfg.device, int(os.environ.get("LOCAL_RANK", 0)))
    dd = setup_distributed(device)
    threads = cfg.threads or default_threads(dd.local_world)
    torch.set_num_threads(threads)
    amp = device.type == "cuda" if cfg.amp is None else cfg.amp
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick kernels
    run_dir = cfg.run_dir
    if dd.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1))

    seed_everything(cfg.seed)
    net = TrainingNet(cfg).to(device)
    opts = build_optimizers(net, cfg)
    scheds = {k: torch.optim.lr_scheduler.LambdaLR(o, lambda s: lr_factor(s, cfg))
              for k, o in opts.items()}
    # fp16 autocast needs loss scaling; CPU autocast runs bf16, which does not.
    scaler = torch.amp.GradScaler(device.type, enabled=amp and device.type == "cuda")
    info = ModelInfo(image_size=cfg.image_size, classes=list(ALL_SYNSETS), mode=cfg.mode,
                     config=cfg.model.to_dict(), framing=cfg.framing)
    if init is not None:
        net.nets["reconstructor"].load_state_dict(init["state_dict"])
        info.threshold = float(init["info"].get("threshold", info.threshold))
    step = 0
    if ckpt is not None:
        info = restore_training_state(ckpt, net, opts, scheds, scaler)
        step = int(ckpt["step"])
        log.info("resumed %s at step %d", run_dir, step)
    del ckpt
    runlog = RunLog(run_dir, dd.main)
    runlog.restore(step)

    datasets = datasets if datasets is not None else build_datasets(cfg)
    _log_setup(cfg, net, datasets, device, dd, threads, amp)
    model = wrap_distributed(net, device, dd)
    # Loading draws nothing from the global RNG (items carry their seeds), so it holds the
    # training's own draws (dropout) alike on every rank, and the saved state fits them all.
    streams = {name: make_loader(datasets[name], cfg, i, dd.rank, dd.world, step,
                                 device.type == "cuda")
               for i, name in enumerate(("source", "target")) if name in datasets}

    info = _loop(cfg, model, net, opts, scheds, scaler, streams, datasets, device, dd, amp,
                 runlog, info, step)
    if dd.world > 1:
        dist.barrier()
    return {"step": cfg.steps, "run_dir": str(run_dir), "info": info, "nets": net.nets}


def wrap_distributed(net: TrainingNet, device: torch.device, dd: Dist) -> nn.Module:
    """``net`` itself on one process, DistributedDataParallel around it on several."""
    if dd.world == 1:
        return net
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(net, device_ids=ids)


def _log_setup(cfg, net, datasets, device, dd, threads, amp) -> None:
    if not dd.main:
        return
    counts = {k: sum(p.numel() for p in m.parameters()) for k, m in net.nets.items()}
    log.info("mode %s on %s x%d (threads %d, amp %s); parameters %s; data %s", cfg.mode,
             device, dd.world, threads, amp, counts,
             {k: len(v) for k, v in datasets.items()})


def _to(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v
            for k, v in batch.items()}


def _loop(cfg, model, net, opts, scheds, scaler, streams, datasets, device, dd, amp, runlog,
          info: ModelInfo, step: int) -> ModelInfo:
    """The training loop from ``step`` to ``cfg.steps``; returns the latest ModelInfo."""
    from tqdm import tqdm

    # Loss parts stay on the device until a log step: no host sync per step on CUDA.
    sums: dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros((), device=device))
    n_sum, images, t0 = 0, 0, time.perf_counter()
    amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    bar = tqdm(total=cfg.steps, initial=step, disable=not dd.main, unit="step",
               mininterval=5.0, dynamic_ncols=True)
    while step < cfg.steps:
        source = _to(next(streams["source"]), device)
        target = _to(next(streams["target"]), device) if "target" in streams else None
        coeff = adversarial_ramp(step, cfg)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp):
            loss, parts = model(source, target, coeff)
        for o in opts.values():
            o.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        for o in opts.values():
            if cfg.grad_clip > 0:
                scaler.unscale_(o)
                nn.utils.clip_grad_norm_([p for g in o.param_groups for p in g["params"]],
                                         cfg.grad_clip)
            scaler.step(o)
        scaler.update()
        for s in scheds.values():
            s.step()
        step += 1
        bar.update(1)
        for k, v in parts.items():
            sums[k] += v.float()
        n_sum += 1
        images += (source["image"].shape[0] + (0 if target is None else
                                               target["image"].shape[0])) * dd.world
        if step % cfg.log_every == 0 or step == cfg.steps:
            elapsed = time.perf_counter() - t0
            means = _global_means(sums, n_sum, dd)
            record = {"kind": "train", "step": step,
                      **{k: round(v, 6) for k, v in means.items()},
                      "adv_coeff": round(coeff, 5), "lr": opts["main"].param_groups[0]["lr"],
                      "images_per_s": round(images / max(elapsed, 1e-9), 2)}
            runlog.write(record)
            bar.set_postfix(loss=f"{record['loss']:.3f}", ips=record["images_per_s"])
            sums.clear()
            n_sum, images, t0 = 0, 0, time.perf_counter()
        last = step == cfg.steps
        save = step % cfg.checkpoint_every == 0 or last
        if dd.main and (step % cfg.eval_every == 0 or save):
            # Every saved model carries a threshold chosen at its own step.
            t_pause = time.perf_counter()
            info = _evaluate(net, datasets["val"], cfg, device, runlog, info, step)
            if save:
                save_run(runlog.path.parent,
                         training_state(net, opts, scheds, scaler, step, cfg, info))
            t0 += time.perf_counter() - t_pause  # images/s counts training time only
    bar.close()
    return info


def _global_means(sums: dict[str, torch.Tensor], n: int, dd: Dist) -> dict[str, float]:
    """Loss means over the interval, averaged over all processes (every rank must call)."""
    keys = sorted(sums)
    values = torch.stack([sums[k] for k in keys]).double() / n  # on the training device
    if dd.world > 1:
        dist.all_reduce(values)
        values = values / dd.world
    return dict(zip(keys, values.tolist(), strict=True))


def _evaluate(net, val, cfg, device, runlog, info: ModelInfo, step: int) -> ModelInfo:
    """Validate on source_val, log, refresh the figure; the new ModelInfo (threshold)."""
    t0 = time.perf_counter()
    res = validate(net.nets["reconstructor"], val, cfg.thresholds, device)
    record = {"kind": "eval", "step": step, **res,
              "seconds": round(time.perf_counter() - t0, 2)}
    runlog.write(record)
    runlog.plot()
    log.info("step %d: source_val IoU %.4f at threshold %.2f (sweep %s)", step,
             res["val_iou"], res["threshold"], res["val_sweep"])
    metrics = {k: v for k, v in res.items() if k != "threshold"}
    return dataclasses.replace(info, threshold=res["threshold"], metrics=metrics, step=step)


if __name__ == "__main__":
    raise SystemExit(main())
