"""Training order that depends only on the seed and the epoch, so a resumed run sees the
same batches as an uninterrupted one.

`EpochShuffle` is the training sampler of single-process runs (under DDP Lightning's
DistributedSampler, also seeded per epoch, takes its place). Lightning calls ``set_epoch``
before each epoch. When a run resumes from a checkpoint taken in the middle of an epoch,
Lightning restarts the loader but counts the batches already done; `skip_batches` makes the
loader start after them instead of serving the epoch's first batches again.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

#: Set by Lightning's seed_everything (segkit.train seeds with cfg.seed).
SEED_VARIABLE = "PL_GLOBAL_SEED"


class EpochShuffle(Sampler[int]):
    """A permutation of ``range(length)`` drawn from ``seed + epoch`` (no global RNG)."""

    def __init__(self, length: int, seed: int | None = None, batch_size: int = 1) -> None:
        self.length = length
        self.seed = int(os.environ.get(SEED_VARIABLE, 0)) if seed is None else seed
        self.batch_size = batch_size
        self.epoch = 0
        self._skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def skip_batches(self, batches: int) -> None:
        """Start the next pass after `batches` batches (once; later passes are whole)."""
        self._skip = batches * self.batch_size

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.length, generator=generator).tolist()
        skip, self._skip = self._skip % max(self.length, 1), 0
        return iter(order[skip:])

    def __len__(self) -> int:
        return self.length
