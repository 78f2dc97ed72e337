"""A 2-process CPU (gloo) DDP run of AdversarialSegmentation; each rank saves its weights.

Run by test_adversarial_ddp.py as ``python -m tests.integration.ddp_adversarial_run METHOD OUT
FIND_UNUSED``; Lightning starts the second process by running the same command again.
"""

from __future__ import annotations

import sys
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.strategies import DDPStrategy

from tests.unit.test_adversarial_task import loaders, make_task


def main(method: str, out: Path, find_unused: bool) -> None:
    task = make_task(method)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy=DDPStrategy(process_group_backend="gloo", find_unused_parameters=find_unused),
        max_epochs=1,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    # 12 labeled samples: each rank trains on its own 6 (3 batches of 2).
    trainer.fit(
        task, train_dataloaders=loaders(labeled_n=12, unlabeled_n=18 if method == "hung2018" else 0)
    )
    state = {k: v for k, v in task.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(
        {"state": state, "global_step": trainer.global_step},
        out / f"rank{trainer.global_rank}.pt",
    )


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), sys.argv[3] == "true")
