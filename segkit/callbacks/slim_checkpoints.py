"""Smaller checkpoints once training ends: ``best.ckpt`` keeps what evaluation, prediction,
export and fine-tuning need (weights, hyperparameters, segkit's config and provenance) and
drops the optimizer, scheduler and loop states, which ``last.ckpt`` keeps for resuming. With
AdamW that is two thirds of the file. ``keep_last: false`` (sweep trials) deletes
``last.ckpt`` too: a finished trial is never resumed.

Done at the end of fit, not at each save, so a run stopped early keeps both files whole.
"""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L

#: Checkpoint entries needed only to continue training.
TRAINING_STATE = ("optimizer_states", "lr_schedulers", "callbacks", "loops")


class SlimCheckpoints(L.Callback):
    """At the end of fit, drop `TRAINING_STATE` from the best checkpoint (rewritten
    atomically) and, unless `keep_last`, delete ``last.ckpt``."""

    def __init__(self, keep_last: bool = True) -> None:
        self.keep_last = keep_last

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        callback = trainer.checkpoint_callback
        best = Path(callback.best_model_path) if callback and callback.best_model_path else None
        if trainer.is_global_zero and best is not None and best.is_file():
            last = best.with_name("last.ckpt")
            if best != last:
                slim(best)
            if not self.keep_last and last.is_file() and best != last:
                last.unlink()
        trainer.strategy.barrier()  # other ranks evaluate the best checkpoint next


def slim(path: Path) -> None:
    """Rewrite the checkpoint at `path` without `TRAINING_STATE` (temp file, then rename)."""
    import torch

    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    for key in TRAINING_STATE:
        checkpoint.pop(key, None)
    partial = path.with_name(path.name + ".slim.tmp")
    torch.save(checkpoint, partial)
    os.replace(partial, path)
