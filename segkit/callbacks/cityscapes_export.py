"""``segkit.eval evaluator=cityscapes_official``: every evaluated prediction written as a
Cityscapes labelId PNG, then scored by cityscapesScripts' own evaluator."""

from __future__ import annotations

from pathlib import Path

import lightning as L

from segkit.formats import cityscapes_official


class CityscapesOfficialExport(L.Callback):
    """Writes each val/test prediction (the task's ``validation_step`` output: classes
    [B,H,W] in trainIds) to ``directory`` as ``<name>_pred_labelIds.png``."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.writer = cityscapes_official.LabelIdWriter(self.directory)
        self.names: list[str] = []

    def on_validation_batch_end(self, trainer, module, outputs, batch, batch_idx, *_):
        for name, pred in zip(batch["name"], outputs.cpu().numpy(), strict=True):
            self.writer.write(name, pred)
            self.names.append(name)

    on_test_batch_end = on_validation_batch_end

    def evaluate(self, root: str, split: str) -> dict[str, float]:
        """``official/miou`` and ``official/iou/<class>`` from cityscapesScripts."""
        official = cityscapes_official.evaluate(self.directory, Path(root), split, self.names)
        scores = {"official/miou": official["miou"]}
        # Class names as in segkit's own keys (val/iou/traffic_light).
        scores.update(
            {f"official/iou/{k.replace(' ', '_')}": v for k, v in official["iou"].items()}
        )
        return scores
