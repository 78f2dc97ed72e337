"""W&B dashboard panels of a semantic run: fixed validation images with their ground truth
and prediction as W&B segmentation masks, a confusion matrix and a per-class IoU table.

Semantic and adversarial tasks show their predicted classes. Mask R-CNN shows its detections
painted as a class map (the best-scoring instance per pixel), against its ground-truth
instances painted the same way; its confusion matrix is that of the painted view
(``model.semantic_view``). Does nothing without a WandbLogger among the trainer's loggers.
Logs from rank 0 only (the scores it reads are already summed over ranks).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import numpy as np

from segkit.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from segkit.tracking.confusion import confusion_figure, scores_per_class
from segkit.tracking.examples import class_names_of, stage_scores, validation_examples


class WandbSegmentationPanels(L.Callback):
    """Every validation: ``val/examples``, the same `num_images` validation images (evenly
    spaced over the split) as W&B images with ``ground_truth`` and ``prediction`` masks.
    After the evaluation of the best checkpoint that follows training (and after testing):
    ``<stage>/confusion_matrix`` (row-normalised figure) and ``<stage>/per_class_iou``
    (a table of class, IoU, pixels of the class in the targets).

    Args:
        num_images: images per panel (0: no panel).
        mean, std: the normalisation of the data's images (0-1 scale), undone for display.
    """

    def __init__(
        self,
        num_images: int = 4,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        if num_images < 0:
            raise ValueError(f"num_images={num_images} is invalid: expected 0 or more")
        self.num_images = num_images
        self.mean, self.std = list(mean), list(std)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        logger = _wandb_logger(trainer)
        if logger is None or trainer.sanity_checking:
            return
        if trainer.state.fn == "fit":
            self._log_examples(logger, trainer, pl_module)
        elif trainer.state.fn == "validate":  # the best checkpoint after training
            self._log_scores(logger, trainer, "val", stage_scores(pl_module, "val"))

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        logger = _wandb_logger(trainer)
        if logger is not None:
            self._log_scores(logger, trainer, "test", stage_scores(pl_module, "test"))

    def _log_examples(self, logger, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        import wandb

        examples = validation_examples(trainer, pl_module, self.num_images, self.mean, self.std)
        if not examples:
            return
        labels = _class_labels(pl_module)
        panel = [
            wandb.Image(
                example.rgb,
                masks={
                    "ground_truth": {"mask_data": example.truth, "class_labels": labels},
                    "prediction": {"mask_data": example.prediction, "class_labels": labels},
                },
                caption=example.name,
            )
            for example in examples
        ]
        logger.log_metrics({"val/examples": panel}, step=trainer.global_step)

    def _log_scores(self, logger, trainer: L.Trainer, stage: str, scores) -> None:
        import wandb

        if scores is None or scores.confusion is None:
            return
        confusion = scores.confusion
        names = scores.class_names
        iou = scores_per_class(confusion)
        table = wandb.Table(
            columns=["class", "iou", "target_pixels"],
            data=[
                [name, None if np.isnan(v) else float(v), int(n)]
                for name, v, n in zip(names, iou, confusion.sum(1).tolist(), strict=True)
            ],
        )
        figure = confusion_figure(confusion.numpy(), names)
        logger.log_metrics(
            {
                f"{stage}/per_class_iou": table,
                f"{stage}/confusion_matrix": wandb.Image(figure),
            },
            step=trainer.global_step,
        )
        import matplotlib.pyplot as plt

        plt.close(figure)


def _class_labels(pl_module: L.LightningModule) -> dict[int, str]:
    labels = dict(enumerate(class_names_of(pl_module)))
    labels[int(pl_module.hparams.get("ignore_index", 255))] = "ignore"
    return labels


def _wandb_logger(trainer: L.Trainer) -> Any:
    if not trainer.is_global_zero:
        return None
    from lightning.pytorch.loggers import WandbLogger

    return next((lg for lg in trainer.loggers if isinstance(lg, WandbLogger)), None)
