"""Endless, resumable batches: their content is a function of (seed, step, rank) only."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

# First word of every item seed (StepBatchSampler.item_seed): those streams stay apart from
# any other SeedSequence a future change derives from the run seed.
ITEM_SEED_TAG = 0x17E4



class StepBatchSampler(Sampler[list[int]]):
    """Endless batches whose content is a function of (seed, step, rank) only.

    Epoch ``e`` is a permutation of the data set drawn from a generator seeded by
    ``(seed, e)`` (several concatenated when the set is smaller than one global batch); rank
    ``r`` of ``world`` takes every ``world``-th index, so ranks never share an item within an
    epoch (unless the set is smaller than one global batch and is repeated). Starting at
    ``start_step`` skips the consumed batches without loading them, which is what makes a
    resumed run see the same batches as an uninterrupted one.

    Indices are :class:`~backend.data.datasets.SeededIndex` ints seeded by ``(seed, rank, step,
    position in batch)``: the data sets draw an item's augmentation and cut-paste from that
    seed, not from a process's RNG, so those draws too are the same after a resume, in any
    loader worker, and differ between ranks.
    """

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world: int = 1,
                 start_step: int = 0):
        if n < 1:
            raise ValueError("empty data set")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.world, self.start_step = rank, world, start_step
        self.copies = math.ceil(world * batch_size / n)  # permutations per epoch
        self.per_rank = self.copies * n // world
        self.batches_per_epoch = self.per_rank // batch_size

    def epoch_indices(self, epoch: int) -> list[int]:
        """This rank's indices for ``epoch``."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.cat([torch.randperm(self.n, generator=g) for _ in range(self.copies)])
        return order[self.rank::self.world][:self.per_rank].tolist()

    def item_seed(self, step: int, position: int) -> tuple[int, ...]:
        """Seed of the draws of the ``position``-th item of this rank's batch at ``step``."""
        # SeedSequence takes non-negative ints only (a negative --seed wraps around).
        return (ITEM_SEED_TAG, self.seed % 2 ** 64, self.rank, step, position)

    def __iter__(self) -> Iterator[list[int]]:
        from backend.data.datasets import SeededIndex

        epoch, first = divmod(self.start_step, self.batches_per_epoch)
        while True:
            idx = self.epoch_indices(epoch)
            for b in range(first, self.batches_per_epoch):
                step = epoch * self.batches_per_epoch + b
                yield [SeededIndex(i, self.item_seed(step, j))
                       for j, i in enumerate(idx[b * self.batch_size:(b + 1) * self.batch_size])]
            epoch, first = epoch + 1, 0
