"""Image decoder R (training only): latent code -> a reconstruction of the input image.

One instance per domain (``recon_source``, ``recon_target``): the adversary makes z carry no
domain, so a single decoder could not redraw each domain's own look (photo backgrounds, textures,
lighting). Separate decoders keep the domain in the reconstruction path and out of z, which is
all the voxel decoder sees (UNIT/CoGAN's domain-specific decoders over a shared latent).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def up_block(c_in: int, c_out: int, groups: int, slope: float) -> nn.Sequential:
    """4x4 stride-2 transposed convolution (doubles H and W) -> GroupNorm -> LeakyReLU."""
    return nn.Sequential(
        nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False),
        nn.GroupNorm(math.gcd(groups, c_out), c_out),
        nn.LeakyReLU(slope, inplace=True),
    )


class ImageDecoder(nn.Module):
    """``(B, latent_dim)`` -> ``(B, 3, S, S)`` images in [-1, 1], from a 4x4 start."""

    def __init__(self, latent_dim: int, image_size: int, channels: tuple[int, ...],
                 groups: int = 8, slope: float = 0.2):
        super().__init__()
        if 4 * 2 ** len(channels) != image_size:
            raise ValueError(f"{len(channels)} up-blocks from 4x4 do not give {image_size} px")
        self.start = channels[0]
        self.fc = nn.Linear(latent_dim, self.start * 16)
        self.act = nn.LeakyReLU(slope, inplace=True)
        blocks = [up_block(a, b, groups, slope)
                  for a, b in zip(channels[:-1], channels[1:], strict=True)]
        self.up = nn.Sequential(*blocks)
        # The last doubling goes straight to RGB: no normalisation on the output.
        self.out = nn.ConvTranspose2d(channels[-1], 3, 4, stride=2, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.act(self.fc(z)).view(-1, self.start, 4, 4)  # (B, C0, 4, 4)
        x = self.up(x)  # (B, C_last, S/2, S/2)
        return torch.tanh(self.out(x))  # (B, 3, S, S) in [-1, 1]
