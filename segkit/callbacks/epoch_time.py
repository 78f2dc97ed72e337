"""Wall-clock seconds per training epoch, logged so runs can be compared on cost too."""

from __future__ import annotations

import time

import lightning as L


class EpochTime(L.Callback):
    """Logs ``time/epoch_s``: wall-clock seconds of each training epoch, from its first batch
    to its end, the validation that ends it included (Lightning validates inside the epoch)."""

    def __init__(self) -> None:
        self._started: float | None = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._started is not None:
            seconds = time.perf_counter() - self._started
            pl_module.log("time/epoch_s", seconds, on_step=False, on_epoch=True, sync_dist=True)
