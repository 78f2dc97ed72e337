"""Pruning of Optuna trials on the monitored metric, for trials that run as their own
`segkit.train` process (`segkit.sweep`): each validation reports ``monitor`` to the study's
storage; when the pruner says stop, training stops and ``pruned.json`` marks the run dir.

The trial is reached through the storage (SQLite in the sweep dir) by its id, so the callback
is built from plain config values. Under DDP, rank 0 reports and decides, and every rank
stops with it (the decision is broadcast).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L

#: The file a pruned trial leaves in its run dir (`segkit.sweep` reads it).
PRUNED_FILE = "pruned.json"


class OptunaPruning(L.Callback):
    """Report ``monitor`` of every validation to trial `trial_id` of `study_name` in
    `storage` (the step: training batches so far) and stop when `pruner` (the sweep's, e.g.
    ``optuna.pruners.MedianPruner``: a study keeps no pruner in its storage) prunes it."""

    def __init__(
        self, storage: str, study_name: str, trial_id: int, monitor: str, pruner: Any
    ) -> None:
        self.storage, self.study_name = storage, study_name
        self.trial_id, self.monitor, self.pruner = int(trial_id), monitor, pruner
        self._trial = None

    def trial(self):
        if self._trial is None:
            import optuna

            study = optuna.load_study(
                study_name=self.study_name, storage=self.storage, pruner=self.pruner
            )
            self._trial = optuna.trial.Trial(study, self.trial_id)
        return self._trial

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        prune = False
        value = trainer.callback_metrics.get(self.monitor)
        if trainer.is_global_zero and value is not None:
            trial = self.trial()
            trial.report(float(value), step=trainer.global_step)
            prune = trial.should_prune()
        if not trainer.strategy.broadcast(prune, src=0):
            return
        trainer.should_stop = True
        if trainer.is_global_zero:
            record = {"step": trainer.global_step, "epoch": trainer.current_epoch,
                      self.monitor: float(value)}  # fmt: skip
            Path(trainer.default_root_dir, PRUNED_FILE).write_text(json.dumps(record) + "\n")
