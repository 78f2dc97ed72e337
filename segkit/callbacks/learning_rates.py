"""The learning rate of every optimizer and parameter group, logged every step (Lightning's
`LearningRateMonitor`: ``lr-AdamW/encoder``, ``lr-AdamW/decoder``...; both networks of the
adversarial and adaptation tasks), and nothing at all without a logger (``logger=none``),
where Lightning's would refuse to start."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import LearningRateMonitor


class LearningRates(LearningRateMonitor):
    """`LearningRateMonitor` that stays idle when the trainer has no logger."""

    def on_train_start(self, trainer, *args: Any, **kwargs: Any) -> None:
        if trainer.loggers:
            super().on_train_start(trainer, *args, **kwargs)

    def on_train_batch_start(self, trainer, *args: Any, **kwargs: Any) -> None:
        if trainer.loggers:
            super().on_train_batch_start(trainer, *args, **kwargs)

    def on_train_epoch_start(self, trainer, *args: Any, **kwargs: Any) -> None:
        if trainer.loggers:
            super().on_train_epoch_start(trainer, *args, **kwargs)
