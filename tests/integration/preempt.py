"""A callback for the SLURM preemption test: at a given step every rank receives SIGUSR1, as
SLURM sends it before a time limit or preemption, then the job dies as a requeue kills it."""

from __future__ import annotations

import os
import signal

import lightning as L


class PreemptAtStep(L.Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step and trainer.ckpt_path is None:  # not after resume
            os.kill(os.getpid(), signal.SIGUSR1)  # Lightning saves hpc_ckpt and requeues
            os._exit(143)  # SLURM ends the job; nothing after this point runs
