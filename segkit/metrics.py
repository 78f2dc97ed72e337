"""Semantic segmentation metrics from a dataset-level confusion matrix.

The confusion matrix is accumulated with torchmetrics (its states are summed across DDP ranks),
and every score is derived from it at the end of the epoch:
- pixels whose target is the ignore index are dropped;
- IoU of class c = TP / (TP + FP + FN);
- mIoU averages over classes present in the target or the prediction; a class absent from both
  has no defined IoU and is left out of the mean (its IoU is reported as NaN);
- pixel accuracy (aAcc) = correct pixels / counted pixels;
- accuracy of class c = TP / pixels whose target is c (NaN when no pixel is c), and mAcc their
  mean over the classes present in the target (mmsegmentation's aAcc / mAcc / per-class Acc).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
from torchmetrics.classification import MulticlassConfusionMatrix


def scores_from_confusion(confmat: torch.Tensor) -> dict[str, torch.Tensor]:
    """Scores from a confusion matrix [C, C] (rows: target, columns: prediction).

    Returns ``{"miou": scalar, "acc": scalar (aAcc), "macc": scalar, "iou": [C],
    "class_acc": [C]}``, NaN for classes without a defined value.
    """
    confmat = confmat.double()
    tp = confmat.diag()
    union = confmat.sum(0) + confmat.sum(1) - tp
    present = union > 0
    nan = torch.full_like(tp, float("nan"))
    iou = torch.where(present, tp / union.clamp(min=1), nan)
    target = confmat.sum(1)
    in_target = target > 0
    class_acc = torch.where(in_target, tp / target.clamp(min=1), nan)
    total = confmat.sum()
    return {
        "miou": iou[present].mean() if present.any() else torch.tensor(float("nan")),
        "acc": tp.sum() / total if total > 0 else torch.tensor(float("nan")),
        "macc": class_acc[in_target].mean() if in_target.any() else torch.tensor(float("nan")),
        "iou": iou,
        "class_acc": class_acc,
    }


class SegmentationScores(MulticlassConfusionMatrix):
    """mIoU, pixel accuracy and per-class IoU over a whole dataset.

    ``update(preds, target)``: preds int64 [B,H,W] class indices (or logits [B,C,H,W]),
    target int64 [B,H,W]. ``compute()`` returns flat float keys: ``miou``, ``acc`` (aAcc),
    ``macc``, ``iou/<class name>`` and ``acc/<class name>``, ready to be logged under a stage
    prefix, and keeps the confusion
    matrix it scored in ``confusion`` (int64 [C,C] on the CPU, rows: target) for dashboards.
    The state is the confusion matrix itself, so DDP sync sums it across ranks.
    """

    def __init__(self, num_classes: int, ignore_index: int, class_names: Sequence[str]) -> None:
        if len(class_names) != num_classes:
            raise ValueError(
                f"{len(class_names)} class names for {num_classes} classes: expected one per class"
            )
        super().__init__(num_classes, ignore_index=ignore_index, validate_args=False)
        self.keys = [f"iou/{metric_safe_name(n)}" for n in class_names]
        self.acc_keys = [f"acc/{metric_safe_name(n)}" for n in class_names]
        self.class_names = list(class_names)
        self.confusion: torch.Tensor | None = None

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        if preds.ndim == target.ndim + 1:
            preds = preds.argmax(1)
        super().update(preds, target)

    def compute(self) -> dict[str, torch.Tensor]:
        confusion = super().compute()
        self.confusion = confusion.detach().cpu()
        scores = scores_from_confusion(confusion)
        out = {k: scores[k].float() for k in ("miou", "acc", "macc")}
        out.update({k: v.float() for k, v in zip(self.keys, scores["iou"], strict=True)})
        out.update({k: v.float() for k, v in zip(self.acc_keys, scores["class_acc"], strict=True)})
        return out


def metric_safe_name(name: str) -> str:
    """Class name usable in a metric key: lower case, runs of other characters become '_'."""
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_") or "class"
