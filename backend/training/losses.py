"""The losses of every mode, and ``TrainingNet``: all modules of a mode in one forward pass."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from backend.models import build_training_modules, degrees_to_vector, reverse_gradient

from .config import MODES, TrainConfig


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
