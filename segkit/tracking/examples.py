"""Predictions on a fixed set of validation images, for pictures (W&B panels, run-dir sample
grids, TensorBoard).

Semantic and adversarial tasks give their predicted classes (the segmenter's, through
``predict_logits``). Mask R-CNN gives its detections painted as a class map (the best-scoring
instance per pixel) against its ground-truth instances painted the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import lightning as L
import numpy as np
import torch

from segkit.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from segkit.inference import at_label_size


@dataclass
class Example:
    """One validation image with its ground truth and prediction (class maps [H,W])."""

    name: str
    rgb: np.ndarray  # uint8 [H,W,3]
    truth: np.ndarray  # int [H,W], ignore index where unlabeled
    prediction: np.ndarray  # int [H,W]


#: (key, examples) of the latest `validation_examples` call.
_last: tuple[tuple, list[Example]] | None = None


def example_indices(length: int, count: int) -> list[int]:
    """`count` indices evenly spaced over a split of `length` samples (the same every epoch)."""
    count = min(count, length)
    return [int(i) for i in np.linspace(0, length - 1, count).round().astype(int)] if count else []


def validation_examples(
    trainer: L.Trainer,
    pl_module: L.LightningModule,
    num_images: int,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> list[Example]:
    """Predictions on `num_images` fixed validation images, in the validation precision.
    Empty when the datamodule has no ``dataset("val")``. Callbacks asking at the same step
    (W&B panels, run-dir grids) share one computation."""
    global _last
    epoch = getattr(trainer, "current_epoch", None)
    key = (id(trainer), id(pl_module), trainer.global_step, epoch, num_images)
    if _last is not None and _last[0] == key:
        return _last[1]
    dataset = getattr(trainer.datamodule, "dataset", None)
    if num_images == 0 or dataset is None:
        return []
    val = dataset("val")
    samples = [val[i] for i in example_indices(len(val), num_images)]
    precision = trainer.precision_plugin  # as in validation: autocast, or bf16-true input
    was_training = pl_module.training
    pl_module.eval()
    shown = []
    with torch.no_grad(), precision.val_step_context():
        for index, sample in enumerate(samples):  # one at a time: sizes may differ
            image = precision.convert_input(sample["image"][None].to(pl_module.device))
            rgb, truth, prediction = _example(pl_module, sample, image, mean, std)
            shown.append(Example(str(sample.get("name", index)), rgb, truth, prediction))
    pl_module.train(was_training)
    _last = (key, shown)
    return shown


def _example(pl_module, sample: dict, image: torch.Tensor, mean, std) -> tuple[np.ndarray, ...]:
    """(uint8 RGB [H,W,3], ground-truth classes [H,W], predicted classes [H,W])."""
    if hasattr(pl_module, "predict_logits"):  # semantic and adversarial tasks
        truth = sample["mask"]
        size = truth.shape[-2:]  # a downscaled image is shown and scored at label size
        predicted = at_label_size(pl_module.predict_logits(image), size)[0].argmax(0)
        rgb = display_rgb(at_label_size(sample["image"][None], size)[0], mean, std)
    else:  # Mask R-CNN: instances painted as classes
        from segkit.formats.instances import paint_instances

        (detections,) = pl_module(list(image))
        predicted = paint_instances(detections["masks"], detections["labels"], detections["scores"])
        target = sample["target"]
        truth = paint_instances(target["masks"], target["labels"])
        rgb = (sample["image"][:3] * 255).clamp(0, 255).round().to(torch.uint8)
        rgb = rgb.permute(1, 2, 0).numpy()
    return rgb, truth.cpu().numpy(), predicted.cpu().numpy()


def display_rgb(image: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Normalised float [C,H,W] -> uint8 [H,W,3] (grey repeated; extra bands dropped)."""
    if image.shape[0] == 1:
        image = image.repeat(3, 1, 1)
    image = image[:3].float()
    mean_t = torch.tensor((list(mean) * 3)[:3]).view(3, 1, 1)
    std_t = torch.tensor((list(std) * 3)[:3]).view(3, 1, 1)
    rgb = ((image * std_t + mean_t) * 255).clamp(0, 255).round().to(torch.uint8)
    return rgb.permute(1, 2, 0).numpy()


def class_names_of(pl_module: L.LightningModule) -> list[str]:
    """The task's class names (Mask R-CNN: background first)."""
    names = getattr(pl_module, "class_names", None) or pl_module.val_scores.class_names
    return list(names)


def stage_scores(pl_module: L.LightningModule, stage: str):
    """The stage's `SegmentationScores` (Mask R-CNN: of its painted view), or None."""
    if hasattr(pl_module, f"{stage}_scores"):
        return getattr(pl_module, f"{stage}_scores")
    semantic = getattr(pl_module, "semantic", None)
    if semantic is not None and pl_module.hparams.get("semantic_view"):
        return semantic[stage]
    return None
