"""`logger=csv`: Lightning's CSVLogger, continuing ``metrics.csv`` when a run resumes.

Lightning's writer deletes an existing ``metrics.csv`` when it starts, which would wipe the
history of a run resumed in its own dir (``resume=RUN_DIR``). Here the file is kept and new
rows are appended under its header (Lightning widens the header when new keys appear). Rows
the interrupted run logged after its last checkpoint stay in the file.
"""

from __future__ import annotations

import csv
import os

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.logger import rank_zero_experiment


class ContinuingCSVLogger(CSVLogger):
    """CSVLogger that appends to an existing ``<log dir>/metrics.csv`` instead of deleting it."""

    @property
    @rank_zero_experiment
    def experiment(self):
        if self._experiment is not None:
            return self._experiment
        path = os.path.join(self.log_dir, "metrics.csv")
        kept = f"{path}.kept"
        resumed = os.path.isfile(path)
        if resumed:
            os.replace(path, kept)  # out of the way of Lightning's clean-up
        writer = CSVLogger.experiment.fget(self)
        if resumed:
            os.replace(kept, path)
            with open(path, newline="") as f:
                writer.metrics_keys = next(csv.reader(f), [])
        return writer
