"""SIGTERM (a scheduler's kill, ``docker stop``, Ctrl+\\ from a job manager): save the
current step, then exit non-zero.

Lightning turns SIGTERM into a SIGTERMException after the batch in progress (all DDP ranks
agree on it) and calls ``on_exception``; `CheckpointOnSigterm` saves ``last.ckpt`` there, and
`segkit.train` exits with 143 (128 + SIGTERM) and the command that continues the run. The save
is Lightning's atomic one (written in full, then renamed), so a second signal during the save
leaves the previous ``last.ckpt`` whole. SLURM's SIGUSR1 is Lightning's own requeue path
(``hpc_ckpt_<n>.ckpt``), see docs/distributed.md.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.utilities.exceptions import SIGTERMException

#: Exit status of a run stopped by SIGTERM (what a shell reports for a SIGTERM kill).
SIGTERM_EXIT_STATUS = 143


class CheckpointOnSigterm(L.Callback):
    """Saves ``<checkpoint dir>/last.ckpt`` of the current step when SIGTERM stops training."""

    def __init__(self) -> None:
        self.saved: Path | None = None

    def on_exception(self, trainer: L.Trainer, pl_module, exception: BaseException) -> None:
        if not isinstance(exception, SIGTERMException) or trainer.state.fn != "fit":
            return
        callback = trainer.checkpoint_callback
        directory = Path(callback.dirpath) if callback and callback.dirpath else None
        if directory is None:
            directory = Path(trainer.default_root_dir) / "checkpoints"
        self.saved = directory / "last.ckpt"
        trainer.save_checkpoint(self.saved)  # every rank calls it; rank 0 writes
