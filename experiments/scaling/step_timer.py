"""A callback for the scaling experiment: rank 0 times every training step and writes the
times, the process count and the threads per process to a JSON file at the end of fit.

DDP steps end in a gradient all-reduce, so rank 0's step times are the whole group's."""

from __future__ import annotations

import json
import time
from pathlib import Path

import lightning as L
import torch


class StepTimer(L.Callback):
    def __init__(self, out_file: str) -> None:
        self.out_file = Path(out_file)
        self.times: list[float] = []
        self._start = 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.times.append(time.perf_counter() - self._start)

    def on_train_end(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:
            record = {
                "processes": trainer.world_size,
                "threads_per_process": torch.get_num_threads(),
                "step_s": self.times,
            }
            self.out_file.write_text(json.dumps(record))
