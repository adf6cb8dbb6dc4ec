"""Residual refinement block shared by the 2D encoder and the 3D voxel decoder.

Two 3x3 (3x3x3) convolutions at constant resolution with a skip connection: extra depth per
stage without changing shapes, so a config with zero blocks is exactly the plain network.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class ResidualBlock(nn.Module):
    """``x -> act(x + norm(conv(act(norm(conv(x))))))`` in 2D or 3D, shape-preserving."""

    def __init__(self, dims: int, channels: int, groups: int, slope: float):
        super().__init__()
        conv = {2: nn.Conv2d, 3: nn.Conv3d}[dims]
        norm_groups = math.gcd(groups, channels)
        self.body = nn.Sequential(
            conv(channels, channels, 3, padding=1, bias=False),
            nn.GroupNorm(norm_groups, channels),
            nn.LeakyReLU(slope, inplace=True),
            conv(channels, channels, 3, padding=1, bias=False),
            nn.GroupNorm(norm_groups, channels),
        )
        self.act = nn.LeakyReLU(slope, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.body(x))
