"""``model.export=[coco|cityscapes]`` of the instance task: every val/test epoch's predictions
written under ``<run dir>/predictions/`` (the task adds this callback itself)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L

from segkit.formats.instances import CocoRecorder, write_cityscapes_instances

EXPORT_FORMATS = ("coco", "cityscapes")


class InstancePredictionExport(L.Callback):
    """Writes the instance task's val/test predictions, from its ``validation_step``/
    ``test_step`` output ``{"preds": [{"boxes", "labels", "scores", "masks" bool [K,H,W]}],
    "targets": [{"boxes", "labels", "masks", ("iscrowd", "area")}]}`` (one per image):

    - "coco": ``<stage>_coco_results.json`` and ``<stage>_coco_gt.json`` at the end of each
      epoch (`segkit.formats.instances.CocoRecorder`; COCO-file data keep their image and
      category ids), written by global rank 0;
    - "cityscapes": ``<stage>_cityscapes/`` in the Cityscapes instance format, per image.

    Nothing is written during Lightning's sanity check.

    Args:
        formats: any of `EXPORT_FORMATS`.
        class_names: one per class, background first.
        cityscapes_label_ids: the Cityscapes labelId of each label 1..C-1 ("cityscapes").
    """

    def __init__(
        self,
        formats: Sequence[str],
        class_names: Sequence[str],
        cityscapes_label_ids: Sequence[int] | None = None,
    ) -> None:
        unknown = [f for f in formats if f not in EXPORT_FORMATS]
        if unknown:
            raise ValueError(f"export formats {unknown} are unknown: expected {EXPORT_FORMATS}")
        if "cityscapes" in formats and not cityscapes_label_ids:
            raise ValueError("export=cityscapes needs cityscapes_label_ids (Cityscapes data)")
        self.formats, self.category_names = list(formats), list(class_names)[1:]
        self.label_ids = list(cityscapes_label_ids or [])
        self.recorders = {s: CocoRecorder(self.category_names) for s in ("val", "test")}

    def on_validation_batch_end(self, trainer, module, outputs, batch, batch_idx, *_) -> None:
        if not trainer.sanity_checking:
            self._record(trainer, "val", outputs, batch)

    def on_test_batch_end(self, trainer, module, outputs, batch, batch_idx, *_) -> None:
        self._record(trainer, "test", outputs, batch)

    def on_validation_epoch_end(self, trainer, module) -> None:
        if not trainer.sanity_checking:
            self._write(trainer, "val")

    def on_test_epoch_end(self, trainer, module) -> None:
        self._write(trainer, "test")

    def _record(self, trainer: L.Trainer, stage: str, outputs: Any, batch: dict) -> None:
        preds, targets = outputs["preds"], outputs["targets"]
        if "coco" in self.formats and "category_ids" in batch and not self.recorders[stage].images:
            # COCO-file data: its category ids (before the stage's first sample is recorded).
            self.recorders[stage] = CocoRecorder(self.category_names, batch["category_ids"][0])
        image_ids = batch.get("image_id") or [None] * len(preds)
        for name, pred, target, image_id in zip(
            batch["name"], preds, targets, image_ids, strict=True
        ):
            if "coco" in self.formats:
                self.recorders[stage].add(name, pred, target, image_id)
            if "cityscapes" in self.formats:
                directory = predictions_dir(trainer) / f"{stage}_cityscapes"
                write_cityscapes_instances(directory, name, pred, self.label_ids)

    def _write(self, trainer: L.Trainer, stage: str) -> None:
        if "coco" in self.formats and trainer.is_global_zero:
            self.recorders[stage].write(predictions_dir(trainer), stage)
        self.recorders[stage].reset()


def predictions_dir(trainer: L.Trainer) -> Path:
    return Path(trainer.default_root_dir) / "predictions"
