"""Semi-supervised semantic segmentation by weak-to-strong consistency (FixMatch, UniMatch) as
a LightningModule, for any semantic segmenter."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch
from torch import nn

from segkit.tasks.consistency import WeakToStrong
from segkit.tasks.nonfinite import NonFiniteGuard
from segkit.tasks.optimization import (
    FactoryOptimizers,
    OptimizerFactory,
    SchedulerFactory,
    check_scheduler_interval,
)
from segkit.tasks.perturbations import step_generator
from segkit.tasks.semantic_evaluation import SemanticEvaluation
from segkit.tasks.teacher import EMATeacher


class SemiSupervisedSegmentation(
    SemanticEvaluation, NonFiniteGuard, FactoryOptimizers, L.LightningModule
):
    """Trains a segmenter on labeled images and, through `WeakToStrong`, on unlabeled ones.

    Training batches are ``{"labeled": semantic batch, "unlabeled": {"image": weak [B,C,H,W],
    "strong": [B,V,C,H,W], "padding": bool [B,H,W], "name", ("true_mask")}, "unlabeled_mix":
    the same form}`` (`segkit.data.labeled_split` with ``data.strong_views`` > 0; the second
    unlabeled batch gives CutMix its partners). The loss is ``seg_weight * loss(labeled) +
    consistency(...)`` (from iteration ``consistency.start``): unlabeled images never reach
    the supervised loss.
    With ``consistency.ema_momentum`` an `EMATeacher` gives the pseudo-labels and is updated
    after every optimizer step. CutMix boxes and feature dropout come from `step_generator`
    (resumed runs repeat). Validation, test and prediction use the segmenter (the student).

    Logs ``train/loss``, ``train/sup_loss``, ``train/unsup_loss``, ``train/mask_ratio`` (share
    of unlabeled pixels whose pseudo-label counts), ``train/fp_loss`` (UniMatch) and, when the
    unlabeled samples carry their hidden masks (the synthetic data), ``train/pseudo_acc`` (on the
    pixels that count) and ``train/pseudo_acc_all``.

    Args:
        net: the segmenter, images [B,C_in,H,W] -> logits [B,C,H,W] (``{"out",
            "aux"}`` in training mode with an auxiliary head, used on labeled images only).
        loss: the supervised loss ``loss(logits, mask)``.
        optimizer, scheduler: factories, as for `segkit.tasks.semantic.SemanticSegmentation`.
        consistency: the method (`segkit.tasks.consistency.WeakToStrong`).
        seg_weight: weight of the supervised term (UniMatch halves both terms: 0.5 with
            ``unsup_weight`` 0.5).
        num_classes, ignore_index, class_names, scheduler_interval, channels_last,
            aux_loss_weight, on_nonfinite, inference: as for `SemanticSegmentation`.
    """

    def __init__(
        self,
        net: nn.Module,
        loss: nn.Module,
        optimizer: OptimizerFactory,
        consistency: WeakToStrong,
        scheduler: SchedulerFactory | None = None,
        seg_weight: float = 1.0,
        num_classes: int = 2,
        ignore_index: int = 255,
        class_names: Sequence[str] | None = None,
        scheduler_interval: str = "step",
        channels_last: bool | str = False,
        aux_loss_weight: float = 0.5,
        on_nonfinite: str = "error",
        inference: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        check_scheduler_interval(scheduler_interval)
        self.save_hyperparameters(
            ignore=["net", "loss", "optimizer", "scheduler", "consistency"], logger=False
        )
        self.net, self.loss, self.consistency = net, loss, consistency
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self._init_evaluation(num_classes, ignore_index, class_names, inference)
        self._init_nonfinite(on_nonfinite)
        momentum = consistency.ema_momentum
        self.teacher = EMATeacher(net, momentum) if momentum is not None else None
        self._stepping = False

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        if "unlabeled" not in batch:
            raise ValueError(
                "semi-supervised training needs labeled and unlabeled images: set "
                "data.labeled_fraction < 1 or data.labeled_list"
            )
        labeled, unlabeled = batch["labeled"], batch["unlabeled"]
        images, mask = labeled["image"], labeled["mask"]
        sup, _, logged = self._supervised(images, mask)
        loss = self.hparams.seg_weight * sup
        logged["train/sup_loss"] = sup.detach()
        if self.consistency.active(self.global_step):
            out = self.consistency(
                self.net,
                self._student,
                unlabeled,
                teacher=self.teacher.as_forward(self.net, self.memory_format)
                if self.teacher is not None
                else None,
                generator=step_generator(self.global_step, self.global_rank),
                partner=batch.get("unlabeled_mix"),
            )
            loss = loss + out.loss
            logged.update(out.logged)
        self._stepping = self.usable_loss(loss, logged)
        if not self._stepping:
            return None  # on_nonfinite=skip: Lightning skips backward and the step
        self.log("train/loss", loss, prog_bar=True, batch_size=images.shape[0])
        self.log_dict(logged, batch_size=images.shape[0])
        return loss

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        super().optimizer_step(*args, **kwargs)  # runs training_step and the update
        # Here rather than in on_train_batch_end: callbacks run before that hook, and a
        # checkpoint saved by one there (SIGTERM) must hold this step's teacher.
        if self.teacher is not None and self._stepping:
            self.teacher.update(self.net)

    def _student(self, images: torch.Tensor) -> torch.Tensor:
        return self._train_forward(images)[0]
