"""A callback for distributed semi-supervised and domain-adaptation tests: every rank saves
the names of the unlabeled (or target) images it trained on, per epoch, where the test reads
them."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L


class SaveUnlabeledNames(L.Callback):
    def __init__(self, out_dir: str, part: str = "unlabeled") -> None:
        self.out_dir, self.part, self.names = Path(out_dir), part, {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        epoch = self.names.setdefault(str(trainer.current_epoch), [])
        epoch.extend(batch[self.part]["name"])

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / f"names{trainer.global_rank}.json"
        path.write_text(json.dumps(self.names))
