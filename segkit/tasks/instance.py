"""Instance segmentation as a LightningModule: torchvision's Mask R-CNN, COCO-style metrics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import nn
from torchmetrics.detection import MeanAveragePrecision

from segkit.callbacks.instance_export import InstancePredictionExport
from segkit.formats.instances import paint_instances
from segkit.metrics import SegmentationScores, metric_safe_name
from segkit.tasks.nonfinite import NonFiniteGuard
from segkit.tasks.optimization import FactoryOptimizers, OptimizerFactory, SchedulerFactory

#: pycocotools' ``Params``: IoU thresholds .50:.05:.95 and 101 recall points, in float64.
COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10).tolist()
COCO_RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101).tolist()


def check_targets(
    images: Sequence[torch.Tensor],
    targets: Sequence[dict[str, torch.Tensor]],
    names: Sequence[str],
    num_classes: int,
) -> tuple[list[dict[str, torch.Tensor]], int]:
    """Validated targets, with degenerate boxes (zero width or height) dropped, and the
    number dropped. Raises ValueError naming the sample for masks of another size than the
    image and labels outside 1..num_classes-1."""
    checked, dropped = [], 0
    for image, target, name in zip(images, targets, names, strict=True):
        boxes, labels, masks = target["boxes"], target["labels"], target["masks"]
        if masks.shape[-2:] != image.shape[-2:] or masks.shape[0] != labels.shape[0]:
            raise ValueError(
                f"sample {name}: masks {tuple(masks.shape)} do not match the image "
                f"{tuple(image.shape[-2:])} and {labels.shape[0]} labels (expected [N,H,W])"
            )
        if labels.numel() and (labels.min() < 1 or labels.max() >= num_classes):
            bad = labels[(labels < 1) | (labels >= num_classes)].unique().tolist()
            raise ValueError(
                f"sample {name}: instance labels {bad} are outside 1..{num_classes - 1} "
                "(0 is background)"
            )
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        dropped += int((~keep).sum())
        checked.append({key: value[keep] for key, value in target.items()})
    return checked, dropped


def without_crowds(target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The boxes, labels and masks of a target's non-crowd instances (what Mask R-CNN trains
    on; COCO crowd regions, ``iscrowd`` 1, only excuse detections in evaluation)."""
    keep = target["iscrowd"] == 0 if "iscrowd" in target else slice(None)
    return {key: target[key][keep] for key in ("boxes", "labels", "masks")}


class InstanceSegmentation(NonFiniteGuard, FactoryOptimizers, L.LightningModule):
    """Trains torchvision's Mask R-CNN on instance samples and scores it COCO-style.

    Batches follow the instance contract: ``{"image": list of float [3,H,W] in [0,1],
    "target": list of {"boxes", "labels" (1..C-1), "masks"}, "name": list[str]}``.

    Logs ``train/loss`` and each part of torchvision's loss dict (``train/loss_classifier``,
    ``train/loss_box_reg``, ``train/loss_mask``, ``train/loss_objectness``,
    ``train/loss_rpn_box_reg``) and ``train/dropped_boxes``; every validation epoch
    ``val/mask_map``, ``val/mask_map_50``, ``val/mask_map_75``, ``val/bbox_map``,
    ``val/bbox_map_50``, ``val/mask_ap/<class>`` (torchmetrics' ``MeanAveragePrecision``
    with the pycocotools backend, masks thresholded at ``mask_threshold``) and, with
    ``semantic_view``, ``val/miou``/``val/acc``/``val/iou/<class>`` of the painted masks
    (`paint_instances`). ``test/...`` likewise.

    Args:
        net: a torchvision ``MaskRCNN`` (`segkit.models.maskrcnn.build_maskrcnn`).
        optimizer, scheduler, scheduler_interval: as for `SemanticSegmentation`.
        num_classes: classes including background.
        class_names: one per class, background first.
        loss: must be None: Mask R-CNN computes its own losses.
        mask_threshold: probability above which a predicted mask pixel is on.
        semantic_view: also score the painted semantic masks (``val/miou``).
        export: formats the predictions of every val/test epoch are written in, under
            ``<run dir>/predictions/``: "coco" (results + ground truth JSON, see
            `segkit.formats.instances`) and "cityscapes" (needs ``cityscapes_label_ids``);
            the task adds an `InstancePredictionExport` callback that writes them.
        cityscapes_label_ids: Cityscapes labelId of each label 1..C-1.
        map_backend: "pycocotools" (COCO's reference code) or "faster_coco_eval" (the same
            numbers, faster on large validation sets; ``pip install faster-coco-eval``).
        on_nonfinite: as for `SemanticSegmentation`.
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        num_classes: int = 2,
        class_names: Sequence[str] | None = None,
        loss: nn.Module | None = None,
        scheduler_interval: str = "step",
        mask_threshold: float = 0.5,
        semantic_view: bool = True,
        export: Sequence[str] = (),
        cityscapes_label_ids: Sequence[int] | None = None,
        map_backend: str = "pycocotools",
        on_nonfinite: str = "error",
    ) -> None:
        super().__init__()
        if loss is not None:
            raise ValueError("Mask R-CNN computes its own losses: use loss=none with it")
        self.save_hyperparameters(ignore=["net", "loss", "optimizer", "scheduler"], logger=False)
        self.net = net
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        names = list(class_names) if class_names else [str(i) for i in range(num_classes)]
        if len(names) != num_classes:
            raise ValueError(f"{len(names)} class names for num_classes={num_classes}")
        self.class_names = names
        self.maps = nn.ModuleDict(
            {
                s: MeanAveragePrecision(
                    iou_type=("bbox", "segm"),
                    class_metrics=True,
                    backend=map_backend,
                    # COCOeval's own float64 thresholds: torchmetrics' float32 linspace moves
                    # 0.55, 0.6, ... by 1e-8, which flips matches whose IoU is exactly there.
                    iou_thresholds=COCO_IOU_THRESHOLDS,
                    rec_thresholds=COCO_RECALL_THRESHOLDS,
                )
                for s in ("val", "test")
            }
        )
        self.semantic = nn.ModuleDict(
            {s: SegmentationScores(num_classes, 255, names) for s in ("val", "test")}
        )
        self.export = (
            InstancePredictionExport(export, names, cityscapes_label_ids) if export else None
        )
        self._init_nonfinite(on_nonfinite)

    def forward(self, images: Sequence[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        """Predictions per image, masks thresholded: ``{"boxes", "labels", "scores",
        "masks": bool [K,H,W]}``."""
        outputs = self.net(list(images))
        return [
            {
                "boxes": o["boxes"],
                "labels": o["labels"],
                "scores": o["scores"],
                "masks": o["masks"][:, 0] > self.hparams.mask_threshold,
            }
            for o in outputs
        ]

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        images = batch["image"]
        targets, dropped = check_targets(
            images, batch["target"], batch["name"], self.hparams.num_classes
        )
        losses = self.net(list(images), [without_crowds(t) for t in targets])
        loss = sum(losses.values())
        if not self.usable_loss(loss, losses):
            return None  # on_nonfinite=skip: Lightning skips backward and the step
        batch_size = len(images)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch_size)
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, batch_size=batch_size)
        self.log("train/dropped_boxes", float(dropped), reduce_fx="sum", batch_size=batch_size)
        return loss

    def configure_callbacks(self) -> list[L.Callback]:
        return [self.export] if self.export is not None else []

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, list]:
        return self._evaluate(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, list]:
        return self._evaluate(batch, "test")

    def _evaluate(self, batch: dict[str, Any], stage: str) -> dict[str, list]:
        """Scores a batch; returns ``{"preds", "targets"}`` (one dict per image) for the
        export callback."""
        targets, _ = check_targets(
            batch["image"], batch["target"], batch["name"], self.hparams.num_classes
        )
        preds = self(batch["image"])
        truth = [{**t, "masks": t["masks"].bool()} for t in targets]
        # iscrowd and area (COCO data) reach torchmetrics, which scores them as COCOeval does.
        self.maps[stage].update(preds, truth)
        if self.hparams.semantic_view:
            for pred, target in zip(preds, truth, strict=True):
                painted = paint_instances(pred["masks"], pred["labels"], pred["scores"])
                plain = without_crowds(target)
                expected = paint_instances(plain["masks"], plain["labels"])
                if "iscrowd" in target:  # crowd pixels not covered by an instance: ignored
                    crowd = target["masks"][target["iscrowd"] == 1].any(0) & (expected == 0)
                    expected[crowd] = 255
                self.semantic[stage].update(painted[None], expected[None])
        return {"preds": preds, "targets": truth}

    def on_validation_epoch_end(self) -> None:
        self._log_scores("val")

    def on_test_epoch_end(self) -> None:
        self._log_scores("test")

    def _log_scores(self, stage: str) -> None:
        values = self.maps[stage].compute()
        self.maps[stage].reset()
        logged = {
            f"{stage}/mask_map_50": values["segm_map_50"],
            f"{stage}/mask_map_75": values["segm_map_75"],
            f"{stage}/bbox_map": values["bbox_map"],
            f"{stage}/bbox_map_50": values["bbox_map_50"],
        }
        per_class = values["segm_map_per_class"].reshape(-1)
        for label, ap in zip(values["classes"].reshape(-1).tolist(), per_class, strict=True):
            logged[f"{stage}/mask_ap/{metric_safe_name(self.class_names[label])}"] = ap
        self.log_dict({k: torch.as_tensor(v, dtype=torch.float32) for k, v in logged.items()})
        self.log(f"{stage}/mask_map", values["segm_map"].float(), prog_bar=True)
        if self.hparams.semantic_view:
            scores = self.semantic[stage].compute()
            self.semantic[stage].reset()
            self.log_dict({f"{stage}/{k}": v for k, v in scores.items()})
