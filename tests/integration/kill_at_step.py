"""Test callbacks that stop or disturb training at a given global step, as the outside world
would: SIGTERM (a scheduler), SIGKILL (out of memory, a lost node), NaN inputs."""

from __future__ import annotations

import os
import signal

import lightning as L


class SignalAtStep(L.Callback):
    def __init__(self, step: int, signal_name: str) -> None:
        self.step, self.signal = step, getattr(signal, signal_name)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step and trainer.ckpt_path is None:  # not after resume
            os.kill(os.getpid(), self.signal)


class NanBatches(L.Callback):
    """Turns the images of the given training batches (counted from 0 over the whole run)
    into NaN, as a corrupt sample or an overflow would: their loss is NaN."""

    def __init__(self, batches: list[int]) -> None:
        self.batches, self.seen = set(batches), 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.seen in self.batches:
            images = batch["image"]  # a stacked tensor, or a list (instance samples)
            for image in images if isinstance(images, list) else [images]:
                image.fill_(float("nan"))
        self.seen += 1


class DiskFullAfterStep(L.Callback):
    """From the given global step on, every file write fails half-way with ENOSPC, as on a
    full disk (checkpoint saves go through fsspec's local file opener)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step != self.step:
            return
        import errno

        from fsspec.implementations.local import LocalFileOpener

        def full_disk_write(opener, data):
            opener.f.write(bytes(data[: len(data) // 2]))
            raise OSError(errno.ENOSPC, "No space left on device")

        LocalFileOpener.write = full_disk_write
