"""A callback for distributed tests: every rank saves its final weights where the test reads
them (outside the run dir, which only rank 0 writes)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch


class SaveRankWeights(L.Callback):
    def __init__(self, out_dir: str) -> None:
        self.out_dir = Path(out_dir)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu() for k, v in pl_module.state_dict().items()}
        torch.save(
            {"global_step": trainer.global_step, "state": state},
            self.out_dir / f"rank{trainer.global_rank}.pt",
        )
