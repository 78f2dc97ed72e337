"""SIGTERM (a scheduler's kill, ``docker stop``, Ctrl+\\ from a job manager): save the
current step, then exit non-zero.

Lightning turns SIGTERM into a SIGTERMException after the batch in progress and calls
``on_exception``; `CheckpointOnSigterm` saves ``last.ckpt`` there, and `segkit.train` exits
with 143 (128 + SIGTERM) and the command that continues the run. The save is Lightning's atomic
one (written in full, then renamed), so a second signal during the save leaves the previous
``last.ckpt`` whole. SLURM's SIGUSR1 is Lightning's own requeue path (``hpc_ckpt_<n>.ckpt``),
see docs/distributed.md.

Under DDP every rank must stop after the same batch. Lightning's own SIGTERM handler runs a
``broadcast`` inside the signal handler, wherever the rank happens to be, which can pair with
another collective (a gradient all-reduce) of the other ranks and hang the job; a rank that
gets the signal twice (a scheduler's plus rank 0's forwarded one) hangs it for sure. Here the
handler only notes the signal; at the end of each training batch the ranks agree on it with
one all-reduce over a CPU (gloo) group, which adds no GPU synchronisation, and all stop there.
"""

from __future__ import annotations

from pathlib import Path
from types import FrameType
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException

#: Exit status of a run stopped by SIGTERM (what a shell reports for a SIGTERM kill).
SIGTERM_EXIT_STATUS = 143


class CheckpointOnSigterm(L.Callback):
    """Saves ``<checkpoint dir>/last.ckpt`` of the current step when SIGTERM stops training."""

    def __init__(self) -> None:
        self.saved: Path | None = None
        self._pending = False  # SIGTERM received, not yet agreed on by the ranks
        self._group: Any = None  # CPU process group of the agreement (DDP only)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        self._pending = False
        connector = trainer._signal_connector
        if trainer.world_size == 1:
            # One process: stop after this batch, as Lightning does (without its broadcast).
            def notify(signum: int, frame: FrameType | None) -> None:
                connector.received_sigterm = True
        else:
            self._group = torch.distributed.new_group(backend="gloo")

            def notify(signum: int, frame: FrameType | None) -> None:
                self._pending = True

        # Lightning registers its notifier after setup (Trainer._run): replace it before.
        connector._sigterm_notifier_fn = notify

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if self._group is None:
            return
        flag = torch.tensor([int(self._pending)])
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX, group=self._group)
        if flag.item():  # some rank got SIGTERM: every rank stops after this batch
            trainer._signal_connector.received_sigterm = True

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._group = None  # destroyed with the default group (segkit.run.launch.distributed_job)

    def on_exception(self, trainer: L.Trainer, pl_module, exception: BaseException) -> None:
        if not isinstance(exception, SIGTERMException) or trainer.state.fn != "fit":
            return
        callback = trainer.checkpoint_callback
        directory = Path(callback.dirpath) if callback and callback.dirpath else None
        if directory is None:
            directory = Path(trainer.default_root_dir) / "checkpoints"
        self.saved = directory / "last.ckpt"
        trainer.save_checkpoint(self.saved)  # every rank calls it; rank 0 writes
