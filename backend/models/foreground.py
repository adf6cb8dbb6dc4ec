"""The foreground model that frames opaque photos: a small U-Net, RGB -> object mask logits.

It sees the whole photo padded to a square at ``MASK_SIZE`` (128) pixels, where framing only
needs the object's box: a stride-2 stem and four stride-2 stages down to 4 x 4 (a receptive
field that spans the image, so "which blob is the object" is decided with the whole picture in
view), bilinear upsampling with skip connections back to half resolution, and the logits
upsampled to the input's size. About 1.4 M parameters (5 MB), a few ms on one CPU core.
Files record their widths, so a model trained with other widths loads as it was trained.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ForegroundConfig:
    # channels at 1/2, 1/4 ... 1/32 scale: the deep, cheap stages wide (which blob is the
    # object is decided there), the full-size ones narrow (they only place its edges)
    widths: tuple[int, ...] = (16, 32, 64, 128, 192)
    image_size: int = 128


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class ForegroundNet(nn.Module):
    """``(B, 3, S, S)`` in [-1, 1] -> ``(B, 1, S, S)`` foreground logits."""

    def __init__(self, cfg: ForegroundConfig = ForegroundConfig()):
        super().__init__()
        self.cfg = cfg
        w = cfg.widths
        self.stem = nn.Sequential(_conv(3, w[0], 2), _conv(w[0], w[0]))
        self.down = nn.ModuleList(nn.Sequential(_conv(a, b, 2), _conv(b, b))
                                  for a, b in zip(w[:-1], w[1:], strict=True))
        self.up = nn.ModuleList(_conv(b + a, a) for a, b in zip(w[:-1], w[1:], strict=True))
        self.head = nn.Conv2d(w[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.stem(x)]
        for stage in self.down:
            skips.append(stage(skips[-1]))
        y = skips.pop()
        for stage in reversed(self.up):
            skip = skips.pop()
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = stage(torch.cat([y, skip], dim=1))
        return F.interpolate(self.head(y), size=x.shape[-2:], mode="bilinear",
                             align_corners=False)
