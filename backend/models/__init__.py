"""The networks: what ships (:class:`Reconstructor` = encoder E + voxel decoder G + heads) and
the training-only parts (per-domain image decoders R, latent discriminator D).

Shape conventions: images ``(B, 3, S, S)`` in [-1, 1]; latent ``(B, latent_dim)``; voxel logits
``(B, R, R, R)`` indexed ``[x, y, z]`` like :func:`synth_render.binvox.read_binvox`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from .discriminator import LatentDiscriminator, reverse_gradient
from .encoder import ImageEncoder
from .heads import ClassHead, ViewHead, degrees_to_vector, vector_to_degrees
from .image_decoder import ImageDecoder
from .voxel_decoder import VoxelDecoder

__all__ = ["ModelConfig", "Reconstructor", "ImageEncoder", "VoxelDecoder", "ImageDecoder",
           "LatentDiscriminator", "ClassHead", "ViewHead", "reverse_gradient",
           "degrees_to_vector", "vector_to_degrees", "build_training_modules"]


@dataclass
class ModelConfig:
    """Architecture hyper-parameters; stored (as a dict) in every checkpoint."""

    image_size: int = 64
    latent_dim: int = 256
    # Encoder: one stride-2 block per entry (64 px -> 2x2 with five).
    enc_channels: tuple[int, ...] = (24, 48, 96, 192, 256)
    # Voxel decoder: channels at 4³, 8³, 16³; the last layer doubles to 32³ logits. Append one
    # entry for 64³.
    vox_channels: tuple[int, ...] = (64, 48, 32)
    # Residual blocks after each encoder stage / each voxel up-sampling (0 = the plain network).
    enc_blocks: int = 0
    vox_blocks: int = 0
    # Image decoders (training only): channels at 4x4 ... S/2 x S/2.
    img_channels: tuple[int, ...] = (128, 64, 32, 16)
    num_classes: int = 13
    head_hidden: int = 128
    disc_hidden: int = 256
    disc_dropout: float = 0.2
    groups: int = 8

    @property
    def voxel_size(self) -> int:
        return 4 * 2 ** len(self.vox_channels)

    def to_dict(self) -> dict:
        """Plain dict (lists, not tuples) for JSON and ``weights_only`` checkpoints."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error (a checkpoint from elsewhere)."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config keys {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


class Reconstructor(nn.Module):
    """Image -> voxel occupancy, object class and viewpoint (the network that ships)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = ImageEncoder(cfg.image_size, cfg.enc_channels, cfg.latent_dim, cfg.groups,
                                    blocks_per_stage=cfg.enc_blocks)
        self.voxel_decoder = VoxelDecoder(cfg.latent_dim, cfg.vox_channels, cfg.groups,
                                          blocks_per_stage=cfg.vox_blocks)
        self.class_head = ClassHead(cfg.latent_dim, cfg.num_classes, cfg.head_hidden)
        self.view_head = ViewHead(cfg.latent_dim, cfg.head_hidden)

    def decode(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Everything the shipped model predicts from a latent code."""
        view_vec = self.view_head(z)  # (B, 4)
        return {
            "voxel_logits": self.voxel_decoder(z),  # (B, R, R, R)
            "class_logits": self.class_head(z),  # (B, num_classes)
            "view": vector_to_degrees(view_vec.float()),  # (B, 2) [azimuth, elevation] degrees
            "view_vec": view_vec,  # (B, 4) raw cos/sin regression, for the loss
        }

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """``images (B, 3, S, S)`` -> dict of ``voxel_logits``, ``class_logits``, ``view``
        (degrees), plus ``z`` and ``view_vec`` for training."""
        z = self.encoder(images)  # (B, latent_dim)
        return {"z": z, **self.decode(z)}

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Inference: ``probs (B, R, R, R)`` in [0, 1], ``class_index``, ``azimuth``,
        ``elevation`` (degrees). Restores the previous train/eval mode."""
        was_training = self.training
        self.eval()
        try:
            out = self(images)
        finally:
            self.train(was_training)
        return {
            "probs": torch.sigmoid(out["voxel_logits"].float()),
            "class_index": out["class_logits"].argmax(1),
            "azimuth": out["view"][:, 0],
            "elevation": out["view"][:, 1],
        }


def build_training_modules(cfg: ModelConfig, reconstruction: bool,
                           adversarial: bool) -> nn.ModuleDict:
    """The Reconstructor plus the training-only modules a mode needs, by name."""
    modules = nn.ModuleDict({"reconstructor": Reconstructor(cfg)})
    if reconstruction:
        for domain in ("source", "target"):
            modules[f"recon_{domain}"] = ImageDecoder(cfg.latent_dim, cfg.image_size,
                                                      cfg.img_channels, cfg.groups)
    if adversarial:
        modules["discriminator"] = LatentDiscriminator(cfg.latent_dim, cfg.disc_hidden,
                                                       cfg.disc_dropout)
    return modules
