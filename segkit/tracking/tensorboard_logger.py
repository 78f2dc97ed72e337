"""``logger=tensorboard``: Lightning's TensorBoardLogger whose event files never overwrite
each other.

Lightning closes the logger's writer at the end of each stage (fit, validate, test), and the
writer reopens a new event file at the next; tensorboardX names an event file after the second
and the host only and opens it for writing, so a stage that started within the same second as
the previous one replaced its file (the validation of the best checkpoint,
``val/confusion_matrix`` included, vanished when testing started in the same second). Here a
closed writer is dropped, and each new one gets a suffix of its own.
"""

from __future__ import annotations

import itertools
import os

from lightning.pytorch.loggers import TensorBoardLogger as LightningTensorBoardLogger

_writers = itertools.count()


class TensorBoardLogger(LightningTensorBoardLogger):
    """Lightning's TensorBoardLogger (same arguments); event files ``...<host>.<pid>.<n>``."""

    @property
    def experiment(self):
        if self._experiment is None:  # a new writer: a file name of its own
            self._kwargs["filename_suffix"] = f".{os.getpid()}.{next(_writers)}"
        return super().experiment

    def finalize(self, status: str) -> None:
        super().finalize(status)
        self._experiment = None  # the next stage writes through a new writer, to a new file
