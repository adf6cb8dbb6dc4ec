"""A mode's data sets (source pairs, its target stream, source_val) and their loaders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from .config import MODES, TrainConfig
from .sampler import StepBatchSampler


def build_datasets(cfg: TrainConfig) -> dict[str, Dataset]:
    """``source`` pairs, the mode's ``target`` stream (or none) and ``val`` (source_val).

    The unsupervised modes' target stream is an
    :class:`~backend.data.datasets.ImageOnlyDataset`: it is built from image paths alone and
    cannot reach target voxels. Only ``oracle`` builds a paired data set over target shapes.
    """
    from backend.data.datasets import ImageOnlyDataset, RenderVoxelDataset
    from backend.data.splits import load_splits

    root = Path(cfg.data)
    splits = load_splits(root / "splits.json")
    synthetic, photo, voxels = root / "renders_synthetic", root / "renders_photo", root / "voxels"
    size, res = cfg.image_size, cfg.model.voxel_size  # grids of another size are skipped
    sets: dict[str, Dataset] = {}
    target = MODES[cfg.mode]["target"]
    if target == "images" and cfg.target_images is not None:
        sets["target"] = ImageOnlyDataset.from_folder(cfg.target_images, size,
                                                      augment=cfg.augment)
    elif target == "images":
        sets["target"] = ImageOnlyDataset.from_r2n2(photo, splits.target_train, size,
                                                    augment=cfg.augment)
    if cfg.framing and isinstance(sets.get("target"), ImageOnlyDataset):
        from backend.core.foreground import cached_squares, load_segmenter

        squares = cached_squares(sets["target"].files, load_segmenter(cfg.foreground),
                                 cfg.run_dir / "target_squares.json")
        sets["target"].use_framing(squares, cfg.framing_jitter)
    elif target == "pairs":
        segmenter = None
        if cfg.framing:
            from backend.core.foreground import load_segmenter

            segmenter = load_segmenter(cfg.foreground)
        sets["target"] = RenderVoxelDataset(photo, voxels, splits.target_train, size,
                                            augment=cfg.augment, voxel_res=res,
                                            autocrop=cfg.framing, segmenter=segmenter,
                                            framing_jitter=cfg.framing_jitter)
    # Unsupervised modes also paste source renders onto their (unlabelled) target images.
    backgrounds = sets["target"] if target == "images" and cfg.paste_p > 0 else None
    sets["source"] = RenderVoxelDataset(synthetic, voxels, splits.source_train, size,
                                        augment=cfg.augment, backgrounds=backgrounds,
                                        paste_p=cfg.paste_p if backgrounds is not None else 0.0,
                                        voxel_res=res, autocrop=cfg.framing,
                                        framing_jitter=cfg.framing_jitter)
    sets["val"] = RenderVoxelDataset(synthetic, voxels, splits.source_val, size,
                                     views=cfg.val_views, voxel_res=res, autocrop=cfg.framing)
    return sets



def make_loader(dataset: Dataset, cfg: TrainConfig, stream: int, rank: int, world: int,
                start_step: int, pin: bool) -> Iterator[dict]:
    """Endless iterator of collated batches for one stream (0 = source, 1 = target)."""
    seed = cfg.seed * 7919 + stream  # each stream its own order
    sampler = StepBatchSampler(len(dataset), cfg.batch_size, seed, rank, world, start_step)
    # Augmentation and cut-paste draw from each item's seed (the sampler's SeededIndex), not
    # from the worker RNG. The loader still gets its own generator: creating the iterator
    # draws the workers' base seed, which must not come from (and shift) the global RNG.
    gen = torch.Generator().manual_seed((seed * 1_000_003 + rank) * 1_000_003 + start_step)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=cfg.num_workers,
                        pin_memory=pin, generator=gen,
                        persistent_workers=cfg.num_workers > 0)
    return iter(loader)
