"""Training order that depends only on the seed and the epoch, so a resumed run sees the
same batches as an uninterrupted one.

`EpochShuffle` is the training sampler of single-process runs, `DistributedEpochShuffle`
(PyTorch's DistributedSampler, seeded per epoch) that of each DDP rank. Lightning calls
``set_epoch`` before each epoch. When a run resumes from a checkpoint taken in the middle of an
epoch, Lightning restarts the loader but counts the batches already done; `skip_batches` makes
the loader start after them instead of serving the epoch's first batches again (on every rank:
each skips its own share of the finished batches).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler

#: Set by Lightning's seed_everything (segkit.train seeds with cfg.seed).
SEED_VARIABLE = "PL_GLOBAL_SEED"


#: Seed offset between streams: loaders of one dataset in independent orders.
_STREAM_STRIDE = 1_000_003_000


class EpochShuffle(Sampler[int]):
    """A permutation of ``range(length)`` drawn from the seed, the epoch and the `stream`
    (another stream: another order of the same samples), with no global RNG."""

    def __init__(
        self, length: int, seed: int | None = None, batch_size: int = 1, stream: int = 0
    ) -> None:
        self.length = length
        self.seed = int(os.environ.get(SEED_VARIABLE, 0)) if seed is None else seed
        self.batch_size, self.stream = batch_size, stream
        self.epoch = 0
        self._skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def skip_batches(self, batches: int) -> None:
        """Start the next pass after `batches` batches (once; later passes are whole)."""
        self._skip = batches * self.batch_size

    def __iter__(self) -> Iterator[int]:
        seed = self.seed * 100_003 + self.epoch + self.stream * _STREAM_STRIDE
        generator = torch.Generator().manual_seed(seed % 2**63)
        order = torch.randperm(self.length, generator=generator).tolist()
        skip, self._skip = self._skip % max(self.length, 1), 0
        return iter(order[skip:])

    def __len__(self) -> int:
        return self.length


class DistributedEpochShuffle(DistributedSampler):
    """PyTorch's DistributedSampler (the one Lightning would install: shuffled, seeded with
    ``PL_GLOBAL_SEED`` and the epoch, padded to equal shares) that can skip finished batches.

    Args:
        dataset: the training set.
        num_replicas, rank: the world size and this process's global rank.
        batch_size: the loader's batch size (`skip_batches` counts batches).
        stream: another stream, another order of the same samples.
    """

    def __init__(
        self,
        dataset: Dataset,
        num_replicas: int,
        rank: int,
        batch_size: int = 1,
        stream: int = 0,
    ):
        seed = int(os.environ.get(SEED_VARIABLE, 0)) + stream * _STREAM_STRIDE
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.batch_size = batch_size
        self._skip = 0

    def skip_batches(self, batches: int) -> None:
        """Start the next pass after `batches` of this rank's batches (once)."""
        self._skip = batches * self.batch_size

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        skip, self._skip = self._skip % max(len(indices), 1), 0
        return iter(indices[skip:])
