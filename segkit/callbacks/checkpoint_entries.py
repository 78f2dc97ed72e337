"""Adds fixed entries to every checkpoint Lightning saves (segkit's resolved run config and
provenance: what `segkit.eval`, `segkit.predict` and `segkit.load` rebuild a model from)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning as L


class CheckpointEntries(L.Callback):
    """Stores ``entries`` (plain containers: checkpoints load with ``weights_only=True``) at
    the top level of every checkpoint."""

    def __init__(self, entries: Mapping[str, Any]) -> None:
        self.entries = dict(entries)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        checkpoint.update(self.entries)
