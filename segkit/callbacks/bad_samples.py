"""Prints each epoch's count of samples a loader skipped (``data.on_bad_sample=skip``)."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import Callback


class BadSampleReport(Callback):
    """Prints, at the end of each train and validation epoch, how many samples were skipped
    (data modules with ``on_bad_sample=skip``; silent otherwise)."""

    def _report(self, trainer: Any, split: str) -> None:
        take = getattr(getattr(trainer, "datamodule", None), "take_bad_sample_count", None)
        count = take(split) if take is not None else 0
        if count:
            # Per process: under DDP each rank reads (and counts) its own share.
            rank = f" (rank {trainer.global_rank})" if trainer.world_size > 1 else ""
            print(
                f"segkit: {split} epoch {trainer.current_epoch}{rank}: skipped {count} bad "
                "samples (data.on_bad_sample=skip; each was warned with its file)"
            )

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self._report(trainer, "train")

    def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.sanity_checking:
            self._report(trainer, "val")
