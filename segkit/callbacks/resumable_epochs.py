"""Every training epoch's randomness follows (seed, epoch), so a resumed run repeats the
uninterrupted one.

At the start of each training epoch, Python's, NumPy's and torch's RNGs are reseeded from
``PL_GLOBAL_SEED`` (set by ``seed_everything``) and the epoch number. Augmentations (in the
main process, or in workers started for the epoch), dropout and the shuffle then depend on the
epoch only, not on how the process got there. A run resumed from an end-of-epoch checkpoint is
bitwise the same as one that never stopped (with ``trainer.deterministic=true``).

A checkpoint taken mid-epoch (SIGTERM, SLURM preemption) resumes with the same reseeding for
its epoch and with the batches already done skipped (`EpochShuffle.skip_batches`, and per
rank under DDP, `DistributedEpochShuffle.skip_batches`). The data order is then exact. Random
draws inside the remaining steps (dropout, augmentation in the main process) start from the
epoch's seed rather than where the interrupted run left them.
"""

from __future__ import annotations

import os
import random

import lightning as L
import numpy as np
import torch

from segkit.data.epoch_order import SEED_VARIABLE, DistributedEpochShuffle, EpochShuffle


def epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7_919 + 1) % 2**32


def reseed(epoch: int) -> None:
    value = epoch_seed(int(os.environ.get(SEED_VARIABLE, 0)), epoch)
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)


class ResumableEpochs(L.Callback):
    """Reseeds at every training epoch start; skips finished batches after a mid-epoch resume."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        loop = trainer.fit_loop
        if not loop.restarting:
            return  # a fresh run: on_train_epoch_start reseeds
        # Resumed: Lightning skips on_train_epoch_start when the checkpoint is mid-epoch.
        reseed(trainer.current_epoch)
        done = loop.epoch_loop.batch_progress.current.processed
        if done >= trainer.num_training_batches:
            return  # saved after the epoch's last batch: the next epoch starts whole
        for loader in loop._combined_loader.flattened:
            sampler = getattr(loader, "sampler", None)
            if isinstance(sampler, (EpochShuffle, DistributedEpochShuffle)):
                sampler.skip_batches(done % max(len(loader), 1))  # this rank's finished batches

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        reseed(trainer.current_epoch)
