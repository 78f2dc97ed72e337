"""Semantic segmentation as a LightningModule: how a network is trained and evaluated."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch
from torch import nn

from segkit.tasks.nonfinite import NonFiniteGuard
from segkit.tasks.optimization import (
    FactoryOptimizers,
    OptimizerFactory,
    SchedulerFactory,
    check_scheduler_interval,
)
from segkit.tasks.semantic_evaluation import SemanticEvaluation


class SemanticSegmentation(
    SemanticEvaluation, NonFiniteGuard, FactoryOptimizers, L.LightningModule
):
    """Trains a network mapping images [B,C_in,H,W] to logits [B,C,H,W] on semantic samples.

    Batches follow the semantic sample contract: ``{"image": float [B,C_in,H,W], "mask": int64
    [B,H,W] (ignore_index = ignore), "name": list[str]}``.

    Logs ``train/loss`` every step (and ``train/loss/<term>`` for a `segkit.losses.WeightedSum`,
    ``train/loss/aux`` with an auxiliary head); ``val/loss``, ``val/miou``, ``val/acc`` and
    ``val/iou/<class>`` every validation epoch (``test/...`` likewise). Scores come from a
    dataset-level confusion matrix (see `segkit.metrics`). Losses are computed in fp32, also
    under mixed precision.

    Args:
        net: the network: returns logits at input resolution, or in training mode
            ``{"out": logits, "aux": aux_logits}`` when it has an auxiliary head
            (`segkit.models.torchvision_segmenter.TorchvisionSegmenter`).
        loss: loss module called as ``loss(logits, mask)``.
        optimizer: factory called as ``optimizer(model=net)`` (Hydra ``_partial_: true`` of
            `segkit.optim.build_optimizer`, which makes the parameter groups).
        scheduler: optional factory called with the optimizer; ``total_iters``/``total_steps``/
            ``T_max`` are filled with the run length in steps (or epochs) and OneCycle's
            ``max_lr`` with each parameter group's learning rate, when not set.
        num_classes, ignore_index, class_names: dataset facts (``${data.*}`` in configs).
        scheduler_interval: "step" or "epoch".
        aux_loss_weight: weight of the auxiliary head's loss (0.4-0.5 in the FCN/DeepLab and
            torchvision reference recipes).
        channels_last: channels-last memory format for the network and inputs (faster under
            mixed precision). The configs' "auto" is resolved from the run's precision by
            `segkit.run.build.build_task` (`segkit.run.precision.channels_last`); a task
            constructed with "auto" itself runs NCHW.
        on_nonfinite: "error" (stop, naming the step and loss terms) or "skip" (skip the batch
            and count it) for a NaN/infinite training loss (``trainer.on_nonfinite``).
        inference: `segkit.inference.InferenceOptions` fields for val/test/predict (sliding
            windows, flips, scales); None: one forward pass (``inference=...`` of eval/predict).
    """

    def __init__(
        self,
        net: nn.Module,
        loss: nn.Module,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
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
        # Modules and factories stay out of hparams: checkpoints must load with torch's
        # weights_only=True; the resolved run config in the checkpoint rebuilds them.
        self.save_hyperparameters(ignore=["net", "loss", "optimizer", "scheduler"], logger=False)
        self.net, self.loss = net, loss
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self._init_evaluation(num_classes, ignore_index, class_names, inference)
        self._init_nonfinite(on_nonfinite)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        if "labeled" in batch:
            # data.labeled_fraction < 1: learn from the labeled part only (the supervised
            # baseline that semi-supervised methods are compared with).
            batch = batch["labeled"]
        images, mask = batch["image"], batch["mask"]
        loss, _, logged = self._supervised(images, mask)
        if not self.usable_loss(loss, logged):
            return None  # on_nonfinite=skip: Lightning skips backward and the step
        batch_size = images.shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=batch_size)
        if logged:
            self.log_dict(logged, batch_size=batch_size)
        return loss
