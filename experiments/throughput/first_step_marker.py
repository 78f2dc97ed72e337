"""A callback for the startup row: writes the wall-clock time of the first training step's
start to a file (added with ``+callbacks.first_step._target_=first_step_marker.FirstStepMarker``
and this folder on PYTHONPATH)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import lightning as L


class FirstStepMarker(L.Callback):
    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if not self.path.exists():  # written whole, then renamed: readers never see half
            partial = self.path.with_name(self.path.name + ".partial")
            partial.write_text(repr(time.time()))
            os.replace(partial, self.path)
