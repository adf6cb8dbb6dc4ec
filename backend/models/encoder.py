"""Image encoder E: a photo or render -> the shared latent code z.

Stride-2 convolution blocks halve the image until it is 2x2 (each optionally followed by
residual blocks at that size); a linear layer maps the flattened features to z. GroupNorm
instead of BatchNorm because source and target batches go through E together or apart
depending on the mode, and batch statistics would then leak the domain (and differ between
training and single-image inference).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .blocks import ResidualBlock


def conv_block(c_in: int, c_out: int, groups: int, slope: float) -> nn.Sequential:
    """3x3 stride-2 convolution (halves H and W) -> GroupNorm -> LeakyReLU."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False),
        nn.GroupNorm(math.gcd(groups, c_out), c_out),
        nn.LeakyReLU(slope, inplace=True),
    )


class ImageEncoder(nn.Module):
    """``(B, 3, S, S)`` images in [-1, 1] -> ``(B, latent_dim)`` codes."""

    def __init__(self, image_size: int, channels: tuple[int, ...], latent_dim: int,
                 groups: int = 8, slope: float = 0.2, blocks_per_stage: int = 0):
        super().__init__()
        final = image_size // 2 ** len(channels)
        if final < 1 or final * 2 ** len(channels) != image_size:
            raise ValueError(f"image_size {image_size} is not divisible by 2**{len(channels)}")
        blocks, c_in = [], 3
        for c_out in channels:
            blocks.append(conv_block(c_in, c_out, groups, slope))
            blocks += [ResidualBlock(2, c_out, groups, slope) for _ in range(blocks_per_stage)]
            c_in = c_out
        self.features = nn.Sequential(*blocks)
        self.fc = nn.Linear(c_in * final * final, latent_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.features(images)  # (B, C, S/2^n, S/2^n)
        return self.fc(x.flatten(1))  # (B, latent_dim)
