"""Validation on source_val: the IoU sweep that fixes a model's threshold."""

from __future__ import annotations

from collections import defaultdict

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from backend.models.heads import azimuth_error


@torch.no_grad()
def validate(model: nn.Module, dataset: Dataset, thresholds, device: torch.device,
             batch_size: int = 64) -> dict:
    """IoU per threshold (mean over images), best threshold, class accuracy and median
    azimuth error on a paired data set (source_val)."""
    from backend.core.metrics import voxel_iou

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
