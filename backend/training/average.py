"""``python -m backend average``: one model from the mean weights of several snapshots.

Snapshots taken along the tail of one run (e.g. its ``model.pt`` every 500 steps over the last
few thousand) lie in one basin; their mean is often a better model than any of them (Polyak
averaging, as in stochastic weight averaging). The network normalizes with GroupNorm only, so
the mean needs no recomputed statistics. The averaged model gets its own occupancy threshold,
chosen on the data set's ``source_val`` split exactly as training chooses it, so the figures it
carries are comparable with a trained model's.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

from backend.core.config import add_dataclass_arguments, arg, dataclass_from_args, positive_int
from backend.core.device import DEVICE_HELP, device_name

log = logging.getLogger(__name__)


@dataclasses.dataclass
class AverageConfig:
    """``backend average``: which snapshots, where the mean goes, what picks its threshold."""

    snapshots: list[Path] = arg(help="model.pt (or checkpoint.pt) files of one run",
                                positional=True)
    out: Path = arg(help="the averaged model.pt to write")
    data: Path = arg(Path("data/procedural"), "data set whose source_val split picks the "
                                              "threshold (the run's)")
    val_views: int = arg(2, "views per source_val shape (training's --val-views)",
                         type=positive_int)
    device: str = arg("auto", DEVICE_HELP, type=device_name)


def average_state_dicts(states: list[dict]) -> dict:
    """Elementwise mean of floating-point tensors; other entries from the last state."""
    import torch

    if not states:
        raise ValueError("nothing to average")
    keys = states[0].keys()
    if any(s.keys() != keys for s in states):
        raise ValueError("the snapshots have different parameters (not the same network)")
    out = {}
    for key, last in states[-1].items():
        if torch.is_floating_point(last):
            out[key] = torch.stack([s[key].float() for s in states]).mean(0).to(last.dtype)
        else:
            out[key] = last.clone()
    return out


def load_snapshots(paths: list[Path]) -> tuple[list, list]:
    """Models and infos of ``paths`` (``model.pt`` or ``checkpoint.pt`` files) on the CPU;
    refuses snapshots of different architectures, input sizes or training modes."""
    from backend.core.checkpoint import load_model

    loaded = [load_model(p, "cpu") for p in paths]
    models, infos = [m for m, _ in loaded], [i for _, i in loaded]
    first = infos[0]
    for path, info in zip(paths, infos, strict=True):
        for field in ("config", "image_size", "mode", "classes"):
            if getattr(info, field) != getattr(first, field):
                raise ValueError(f"{path}: {field} differs from {paths[0]}'s; only snapshots "
                                 "of one run can be averaged")
    return models, infos


def run_average(cfg: AverageConfig) -> int:
    from backend.core.checkpoint import save_model
    from backend.core.device import resolve_device
    from backend.data.datasets import RenderVoxelDataset
    from backend.data.splits import load_splits
    from backend.training.config import TrainConfig
    from backend.training.validation import validate

    if len(cfg.snapshots) < 2:
        raise ValueError("average needs at least two snapshots")
    models, infos = load_snapshots(cfg.snapshots)
    model = models[-1]
    model.load_state_dict(average_state_dicts([m.state_dict() for m in models]))
    device = resolve_device(cfg.device, 0)
    splits = load_splits(Path(cfg.data) / "splits.json")
    val = RenderVoxelDataset(Path(cfg.data) / "renders_synthetic", Path(cfg.data) / "voxels",
                             splits.source_val, int(infos[-1].image_size),
                             views=cfg.val_views, voxel_res=model.cfg.voxel_size)
    res = validate(model.to(device), val, TrainConfig().thresholds, device)  # no_grad inside
    steps = sorted(int(i.step) for i in infos)
    metrics = {k: v for k, v in res.items() if k != "threshold"}
    metrics["averaged_steps"] = steps
    info = dataclasses.replace(infos[-1], threshold=res["threshold"], metrics=metrics,
                               step=steps[-1])
    save_model(cfg.out, model.cpu(), info)
    log.info("averaged %d snapshots (steps %s): source_val IoU %.4f at threshold %.2f "
             "(the last snapshot alone: %s) -> %s", len(models), steps, res["val_iou"],
             res["threshold"], _last_val(infos[-1]), cfg.out)
    return 0


def _last_val(info) -> str:
    value = info.metrics.get("val_iou")
    return "n/a" if value is None else f"{value:.4f} at {info.threshold:.2f}"


def add_average_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("average", help="average the weights of one run's snapshots",
                              description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_dataclass_arguments(p, AverageConfig)
    p.set_defaults(func=lambda a: run_average(dataclass_from_args(AverageConfig, a)))
    return p
