"""Resume: what a checkpoint holds, how a resumed run's config is settled, atomic saves."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
from dataclasses import fields
from pathlib import Path

from backend.core.checkpoint import (
    ModelInfo,
    atomic_save,
    clean_state_dict,
    load_checkpoint_file,
    model_payload,
    rng_state,
    set_rng_state,
)

from .config import OPERATIONAL, TrainConfig
from .losses import TrainingNet
from .optim import lr_factor

log = logging.getLogger(__name__)

CHECKPOINT_VERSION = 1



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


def keep_snapshot(run_dir: Path, step: int) -> Path:
    """A copy of the ``model.pt`` just saved, as ``snapshots/model-<step>.pt`` (atomic)."""
    out = run_dir / "snapshots" / f"model-{step:06d}.pt"
    out.parent.mkdir(exist_ok=True)
    tmp = out.with_suffix(".tmp")
    shutil.copyfile(run_dir / "model.pt", tmp)
    os.replace(tmp, out)
    return out
