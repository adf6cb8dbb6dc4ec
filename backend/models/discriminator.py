"""Latent discriminator D (training only) and the gradient-reversal layer.

D tells source codes from target codes. E is trained to fool it through a gradient-reversal
layer (DANN): identity forward, gradient times ``-lambda`` backward, so one backward pass trains
D to separate the domains and E to mix them. Spectral norm bounds D's Lipschitz constant and
dropout adds noise, so D cannot win outright and starve E of useful gradients.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class _ReverseGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, coeff: float) -> torch.Tensor:
        ctx.coeff = coeff
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.coeff * grad, None


def reverse_gradient(x: torch.Tensor, coeff: float) -> torch.Tensor:
    """Identity in the forward pass; multiplies the gradient by ``-coeff`` on the way back."""
    return _ReverseGrad.apply(x, coeff)


class LatentDiscriminator(nn.Module):
    """``(B, latent_dim)`` -> ``(B,)`` logits; positive means "target domain"."""

    def __init__(self, latent_dim: int, hidden: int = 256, dropout: float = 0.2,
                 slope: float = 0.2):
        super().__init__()
        self.net = nn.Sequential(
            spectral_norm(nn.Linear(latent_dim, hidden)),
            nn.LeakyReLU(slope),
            nn.Dropout(dropout),
            spectral_norm(nn.Linear(hidden, hidden)),
            nn.LeakyReLU(slope),
            nn.Dropout(dropout),
            spectral_norm(nn.Linear(hidden, 1)),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).squeeze(1)  # (B,)
