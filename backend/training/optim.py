"""Optimizers, the learning-rate schedule and seeding."""

from __future__ import annotations

import math

import torch

from .config import TrainConfig
from .losses import TrainingNet


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
