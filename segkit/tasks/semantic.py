"""Semantic segmentation as a LightningModule: how a network is trained and evaluated."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from torch import nn

from segkit.metrics import SegmentationScores
from segkit.tasks.optimization import FactoryOptimizers, OptimizerFactory, SchedulerFactory


class SemanticSegmentation(FactoryOptimizers, L.LightningModule):
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
        channels_last: channels-last memory format for the network and inputs. "auto" (the
            configs' default) turns it on under mixed precision (bf16/fp16 convolutions on
            GPUs and AMX CPUs are faster in it) and leaves fp32 in NCHW, which trains 0-13%
            faster on CPUs (experiments/precision). Results agree to float rounding.
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
        channels_last: bool | str = "auto",
        aux_loss_weight: float = 0.5,
    ) -> None:
        super().__init__()
        if scheduler_interval not in ("step", "epoch"):
            raise ValueError(
                f"scheduler_interval={scheduler_interval!r} is invalid: expected 'step' or 'epoch'"
            )
        # Modules and factories stay out of hparams: checkpoints must load with torch's
        # weights_only=True; the resolved run config in the checkpoint rebuilds them.
        self.save_hyperparameters(ignore=["net", "loss", "optimizer", "scheduler"], logger=False)
        self.net, self.loss = net, loss
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        if channels_last not in (True, False, "auto"):
            raise ValueError(
                f"channels_last={channels_last!r} is invalid: expected a bool or 'auto'"
            )
        self.memory_format = (
            torch.channels_last if channels_last is True else torch.contiguous_format
        )
        self.net.to(memory_format=self.memory_format)
        names = (
            list(class_names) if class_names is not None else [str(i) for i in range(num_classes)]
        )
        self.val_scores = SegmentationScores(num_classes, ignore_index, names)
        self.test_scores = SegmentationScores(num_classes, ignore_index, names)

    def setup(self, stage: str) -> None:
        if self.hparams.channels_last == "auto":
            mixed = str(self.trainer.precision).endswith("-mixed")
            self.memory_format = torch.channels_last if mixed else torch.contiguous_format
            self.net.to(memory_format=self.memory_format)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images float [B,C_in,H,W] -> logits [B,C,H,W] (the auxiliary head is not returned)."""
        out = self.net(images.contiguous(memory_format=self.memory_format))
        return out["out"] if isinstance(out, dict) else out

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        if "labeled" in batch:
            # data.labeled_fraction < 1: learn from the labeled part only (the supervised
            # baseline that semi-supervised methods are compared with).
            batch = batch["labeled"]
        images, mask = batch["image"], batch["mask"]
        out = self.net(images.contiguous(memory_format=self.memory_format))
        logits, aux = (out["out"], out.get("aux")) if isinstance(out, dict) else (out, None)
        loss = self._loss(logits, mask)
        logged = {f"train/loss/{k}": v for k, v in getattr(self.loss, "last_terms", {}).items()}
        if aux is not None and self.hparams.aux_loss_weight:
            aux_loss = self._loss(aux, mask)
            logged["train/loss/aux"] = aux_loss
            loss = loss + self.hparams.aux_loss_weight * aux_loss
        batch_size = images.shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=batch_size)
        if logged:
            self.log_dict(logged, batch_size=batch_size)
        return loss

    def _loss(self, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # fp32 logits: softmax/log terms of the losses lose accuracy in bf16/fp16.
        return self.loss(logits.float(), mask)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_scores)

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_scores)

    def on_validation_epoch_end(self) -> None:
        self._log_scores("val", self.val_scores)

    def on_test_epoch_end(self) -> None:
        self._log_scores("test", self.test_scores)

    def _evaluate(self, batch: dict[str, Any], stage: str, scores: SegmentationScores) -> None:
        logits = self(batch["image"])
        loss = self._loss(logits, batch["mask"])
        self.log(
            f"{stage}/loss",
            loss,
            prog_bar=stage == "val",
            sync_dist=True,
            batch_size=batch["image"].shape[0],
        )
        scores.update(logits.argmax(1), batch["mask"])

    def _log_scores(self, stage: str, scores: SegmentationScores) -> None:
        # compute() already sums the confusion matrix across ranks: every rank logs the same.
        values = scores.compute()
        scores.reset()
        self.log_dict({f"{stage}/{k}": v for k, v in values.items() if k != "miou"})
        self.log(f"{stage}/miou", values["miou"], prog_bar=True)
