"""Small heads on the latent code: object class and viewpoint.

The viewpoint is regressed as ``(cos az, sin az, cos el, sin el)`` so that azimuth wraps
(359° and 1° are neighbours) and converted to degrees only for output.
"""

from __future__ import annotations

import torch
from torch import nn


def mlp(latent_dim: int, hidden: int, out: int, slope: float = 0.2) -> nn.Sequential:
    return nn.Sequential(nn.Linear(latent_dim, hidden), nn.LeakyReLU(slope), nn.Linear(hidden, out))


class ClassHead(nn.Module):
    """``(B, latent_dim)`` -> ``(B, num_classes)`` logits."""

    def __init__(self, latent_dim: int, num_classes: int, hidden: int = 128):
        super().__init__()
        self.net = mlp(latent_dim, hidden, num_classes)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class ViewHead(nn.Module):
    """``(B, latent_dim)`` -> ``(B, 4)`` unnormalised ``(cos az, sin az, cos el, sin el)``."""

    def __init__(self, latent_dim: int, hidden: int = 128):
        super().__init__()
        self.net = mlp(latent_dim, hidden, 4)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def degrees_to_vector(view: torch.Tensor) -> torch.Tensor:
    """``(B, 2)`` ``[azimuth, elevation]`` in degrees -> ``(B, 4)`` cos/sin targets."""
    rad = torch.deg2rad(view.float())
    return torch.stack([rad[:, 0].cos(), rad[:, 0].sin(), rad[:, 1].cos(), rad[:, 1].sin()], 1)


def vector_to_degrees(vec: torch.Tensor) -> torch.Tensor:
    """``(B, 4)`` cos/sin -> ``(B, 2)`` ``[azimuth in [0, 360), elevation in [-90, 90]]`` in
    degrees (an elevation's cosine is never negative: a predicted one is taken as its size)."""
    az = torch.rad2deg(torch.atan2(vec[:, 1], vec[:, 0])) % 360.0
    el = torch.rad2deg(torch.atan2(vec[:, 3], vec[:, 2].abs()))
    return torch.stack([az, el], 1)


def azimuth_error(pred_deg: torch.Tensor, true_deg: torch.Tensor) -> torch.Tensor:
    """Absolute angular difference in degrees, wrapped to [0, 180]."""
    diff = (pred_deg - true_deg) % 360.0
    return torch.minimum(diff, 360.0 - diff)

