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

import dataclasses
import json
import logging
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset

from backend.core.checkpoint import ModelInfo, load_checkpoint_file
from backend.core.device import resolve_device
from backend.models import ModelConfig
from synth_render.taxonomy import ALL_SYNSETS

from .config import TrainConfig
from .distributed import Dist, default_threads, global_means, setup_distributed, wrap_distributed
from .losses import TrainingNet, adversarial_ramp
from .optim import build_optimizers, lr_factor, seed_everything
from .runlog import RunLog
from .state import (
    keep_snapshot,
    resolve_resume,
    restore_training_state,
    save_run,
    training_state,
)
from .streams import build_datasets, make_loader
from .validation import validate

log = logging.getLogger(__name__)


def train(cfg: TrainConfig, datasets: dict[str, Dataset] | None = None) -> dict:
    """Train (or resume) a run; returns ``{"step", "run_dir", "info", "nets"}`` (``nets``: the
    unwrapped modules). ``datasets`` overrides :func:`build_datasets` (tests)."""
    run = Run.start(cfg, datasets)
    info = run.loop()
    if run.dd.world > 1:
        dist.barrier()
    return {"step": run.cfg.steps, "run_dir": str(run.cfg.run_dir), "info": info,
            "nets": run.net.nets}


@dataclass
class Run:
    """One training process's state: what the loop reads and updates, in one object."""

    cfg: TrainConfig
    net: TrainingNet  # the modules (unwrapped)
    model: nn.Module  # net, or DDP around it
    opts: dict
    scheds: dict
    scaler: torch.amp.GradScaler
    datasets: dict[str, Dataset]
    streams: dict
    device: torch.device
    dd: Dist
    amp: bool
    runlog: RunLog
    info: ModelInfo
    step: int = 0
    # Loss parts stay on the device until a log step: no host sync per step on CUDA.
    sums: dict = field(default_factory=dict)
    n_sum: int = 0
    images: int = 0
    t0: float = field(default_factory=time.perf_counter)

    @classmethod
    def start(cls, cfg: TrainConfig, datasets: dict[str, Dataset] | None = None) -> Run:
        """Settle the config (resume, fine-tuning), build everything, restore a checkpoint."""
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
                         config=cfg.model.to_dict(), framing=cfg.framing,
                         training={"recipe": cfg.recipe or None, "config": cfg.to_dict()})
        if init is not None:
            net.nets["reconstructor"].load_state_dict(init["state_dict"])
            info.threshold = float(init["info"].get("threshold", info.threshold))
        step = 0
        if ckpt is not None:
            info = restore_training_state(ckpt, net, opts, scheds, scaler)
            # A resumed stage (a longer schedule, say) records the config it runs with now.
            info.training = {"recipe": cfg.recipe or None, "config": cfg.to_dict()}
            step = int(ckpt["step"])
            log.info("resumed %s at step %d", run_dir, step)
        del ckpt
        runlog = RunLog(run_dir, dd.main)
        runlog.restore(step)

        datasets = datasets if datasets is not None else build_datasets(cfg)
        if dd.main:
            counts = {k: sum(p.numel() for p in m.parameters()) for k, m in net.nets.items()}
            log.info("mode %s on %s x%d (threads %d, amp %s); parameters %s; data %s",
                     cfg.mode, device, dd.world, threads, amp, counts,
                     {k: len(v) for k, v in datasets.items()})
        # Loading draws nothing from the global RNG (items carry their seeds), so it holds the
        # training's own draws (dropout) alike on every rank, and the saved state fits them all.
        streams = {name: make_loader(datasets[name], cfg, i, dd.rank, dd.world, step,
                                     device.type == "cuda")
                   for i, name in enumerate(("source", "target")) if name in datasets}
        return cls(cfg, net, wrap_distributed(net, device, dd), opts, scheds, scaler, datasets,
                   streams, device, dd, amp, runlog, info, step)

    def loop(self) -> ModelInfo:
        """The training loop from ``step`` to ``cfg.steps``; returns the latest ModelInfo."""
        from tqdm import tqdm

        cfg = self.cfg
        self.sums = defaultdict(lambda: torch.zeros((), device=self.device))
        self.n_sum, self.images, self.t0 = 0, 0, time.perf_counter()
        bar = tqdm(total=cfg.steps, initial=self.step, disable=not self.dd.main, unit="step",
                   mininterval=5.0, dynamic_ncols=True)
        while self.step < cfg.steps:
            coeff = self.optimizer_step()
            bar.update(1)
            if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                record = self.log_interval(coeff)
                bar.set_postfix(loss=f"{record['loss']:.3f}", ips=record["images_per_s"])
            snapshot = (cfg.snapshot_every > 0 and self.step >= cfg.snapshot_from
                        and self.step % cfg.snapshot_every == 0)
            save = self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps or snapshot
            if self.dd.main and (self.step % cfg.eval_every == 0 or save):
                # Every saved model carries a threshold chosen at its own step.
                t_pause = time.perf_counter()
                self.validate()
                if save:
                    save_run(self.runlog.path.parent, training_state(
                        self.net, self.opts, self.scheds, self.scaler, self.step, cfg,
                        self.info))
                if snapshot:
                    keep_snapshot(self.runlog.path.parent, self.step)
                self.t0 += time.perf_counter() - t_pause  # images/s: training time only
        bar.close()
        return self.info

    def optimizer_step(self) -> float:
        """One step on the next batches; returns the adversarial coefficient it used."""
        cfg, device = self.cfg, self.device
        source = _to(next(self.streams["source"]), device)
        target = _to(next(self.streams["target"]), device) if "target" in self.streams else None
        coeff = adversarial_ramp(self.step, cfg)
        amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
        with torch.autocast(device.type, dtype=amp_dtype, enabled=self.amp):
            loss, parts = self.model(source, target, coeff)
        for o in self.opts.values():
            o.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        for o in self.opts.values():
            if cfg.grad_clip > 0:
                self.scaler.unscale_(o)
                nn.utils.clip_grad_norm_([p for g in o.param_groups for p in g["params"]],
                                         cfg.grad_clip)
            self.scaler.step(o)
        self.scaler.update()
        for s in self.scheds.values():
            s.step()
        self.step += 1
        for k, v in parts.items():
            self.sums[k] += v.float()
        self.n_sum += 1
        self.images += (source["image"].shape[0] + (0 if target is None else
                                                    target["image"].shape[0])) * self.dd.world
        return coeff

    def log_interval(self, coeff: float) -> dict:
        """The interval's mean losses over all processes, written to ``log.jsonl``."""
        elapsed = time.perf_counter() - self.t0
        means = global_means(self.sums, self.n_sum, self.dd)
        record = {"kind": "train", "step": self.step,
                  **{k: round(v, 6) for k, v in means.items()},
                  "adv_coeff": round(coeff, 5), "lr": self.opts["main"].param_groups[0]["lr"],
                  "images_per_s": round(self.images / max(elapsed, 1e-9), 2)}
        self.runlog.write(record)
        self.sums.clear()
        self.n_sum, self.images, self.t0 = 0, 0, time.perf_counter()
        return record

    def validate(self) -> None:
        """Validate on source_val, log, refresh the figure; the threshold goes into info."""
        t0 = time.perf_counter()
        res = validate(self.net.nets["reconstructor"], self.datasets["val"], self.cfg.thresholds,
                       self.device)
        self.runlog.write({"kind": "eval", "step": self.step, **res,
                           "seconds": round(time.perf_counter() - t0, 2)})
        self.runlog.plot()
        log.info("step %d: source_val IoU %.4f at threshold %.2f (sweep %s)", self.step,
                 res["val_iou"], res["threshold"], res["val_sweep"])
        metrics = {k: v for k, v in res.items() if k != "threshold"}
        self.info = dataclasses.replace(self.info, threshold=res["threshold"], metrics=metrics,
                                        step=self.step)


def _to(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v
            for k, v in batch.items()}
