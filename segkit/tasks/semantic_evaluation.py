"""What every semantic task shares, however it trains: the network's forward pass and loss
(auxiliary head included), and evaluation on the val and test splits."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torchmetrics import MeanMetric

from segkit.inference import InferenceOptions, at_label_size
from segkit.metrics import SegmentationScores


class SemanticEvaluation:
    """Mixin for LightningModules with a network ``self.net`` (logits [B,C,H,W] at input
    resolution, or ``{"out", "aux"}`` in training mode) and a loss ``self.loss(logits, mask)``.

    Logs ``val/loss``, ``val/miou``, ``val/acc`` and ``val/iou/<class>`` every validation epoch
    (``test/...`` likewise), from a dataset-level confusion matrix (see `segkit.metrics`).
    Call `_init_evaluation` in ``__init__`` after ``save_hyperparameters`` (which must include
    ``channels_last`` and ``aux_loss_weight``).

    ``inference`` (`segkit.inference.InferenceOptions` fields; None: one forward pass) says
    how validation, test and `predict_logits` run the network: sliding windows, flips, scales.
    """

    # Set by the task's __init__ before `_init_evaluation` (annotations only: nn.Module
    # registers modules itself).
    net: nn.Module
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    # Set by `_init_evaluation`.
    memory_format: torch.memory_format
    val_scores: SegmentationScores
    test_scores: SegmentationScores
    val_loss: MeanMetric
    test_loss: MeanMetric
    inference: InferenceOptions | None

    def _init_evaluation(
        self,
        num_classes: int,
        ignore_index: int,
        class_names: Sequence[str] | None,
        inference: Mapping[str, Any] | None = None,
    ) -> None:
        channels_last = self.hparams.channels_last
        if channels_last not in (True, False, "auto"):
            raise ValueError(
                f"channels_last={channels_last!r} is invalid: expected a bool or 'auto'"
            )
        # "auto" is resolved by whoever builds the task (segkit.run.build, from the run's
        # precision); a task constructed with "auto" itself runs NCHW, which is always correct.
        self.memory_format = (
            torch.channels_last if channels_last is True else torch.contiguous_format
        )
        self.net.to(memory_format=self.memory_format)
        names = (
            list(class_names) if class_names is not None else [str(i) for i in range(num_classes)]
        )
        self.val_scores = SegmentationScores(num_classes, ignore_index, names)
        self.test_scores = SegmentationScores(num_classes, ignore_index, names)
        # Sample-weighted mean over the whole split, summed across DDP ranks like the scores
        # (Lightning's sync_dist would average the ranks' means, biased when shares differ).
        self.val_loss = MeanMetric()
        self.test_loss = MeanMetric()
        #: How val/test/predict run the network (sliding windows, TTA); None: one pass.
        self.inference = InferenceOptions(**inference) if inference else None

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images float [B,C_in,H,W] -> logits [B,C,H,W] (the auxiliary head is not returned)."""
        out = self.net(images.contiguous(memory_format=self.memory_format))
        return out["out"] if isinstance(out, dict) else out

    def _supervised(
        self, images: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Training forward pass and loss on labeled images: (loss, logits, logged terms).

        The terms are ``train/loss/<term>`` of a `segkit.losses.WeightedSum` and
        ``train/loss/aux`` when the network has an auxiliary head (weight aux_loss_weight)."""
        logits, aux = self._train_forward(images)
        loss = self._loss(logits, mask)
        logged = {f"train/loss/{k}": v for k, v in getattr(self.loss, "last_terms", {}).items()}
        if aux is not None and self.hparams.aux_loss_weight:
            aux_loss = self._loss(aux, mask)
            logged["train/loss/aux"] = aux_loss
            loss = loss + self.hparams.aux_loss_weight * aux_loss
        return loss, logits, logged

    def _train_forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(logits, auxiliary logits or None) of the network in training mode."""
        out = self.net(images.contiguous(memory_format=self.memory_format))
        return (out["out"], out.get("aux")) if isinstance(out, dict) else (out, None)

    def _loss(self, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # fp32 logits: softmax/log terms of the losses lose accuracy in bf16/fp16.
        return self.loss(logits.float(), mask)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        return self._evaluate(batch, "val", self.val_scores, self.val_loss)

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        return self._evaluate(batch, "test", self.test_scores, self.test_loss)

    def predict_logits(self, images: torch.Tensor) -> torch.Tensor:
        """Logits [B,C,H,W] as `inference` asks (log mean softmax under TTA)."""
        if self.inference is None:
            return self(images)
        from segkit.inference import predict_scores

        return predict_scores(self, images, self.inference)

    def on_validation_epoch_end(self) -> None:
        self._log_scores("val", self.val_scores)

    def on_test_epoch_end(self) -> None:
        self._log_scores("test", self.test_scores)

    def _evaluate(
        self,
        batch: dict[str, Any],
        stage: str,
        scores: SegmentationScores,
        mean_loss: MeanMetric,
    ) -> torch.Tensor:
        """Update the split's scores and loss with a batch; its predicted classes [B,H,W]."""
        # Labels may be larger than the images (a model fed downscaled images, scored at the
        # labels' resolution: `segkit.data.transforms.ImageOnly`).
        logits = at_label_size(self.predict_logits(batch["image"]), batch["mask"].shape[-2:])
        mean_loss.update(self._loss(logits, batch["mask"]), weight=batch["image"].shape[0])
        self.log(
            f"{stage}/loss",
            mean_loss,
            on_step=False,
            on_epoch=True,
            prog_bar=stage == "val",
            add_dataloader_idx=False,  # each loader logs under its own stage name
        )
        predicted = logits.argmax(1)
        scores.update(predicted, batch["mask"])
        return predicted

    def _log_scores(self, stage: str, scores: SegmentationScores) -> None:
        # compute() already sums the confusion matrix across ranks: every rank logs the same.
        values = scores.compute()
        scores.reset()
        logged = {f"{stage}/{k}": v for k, v in values.items() if k != "miou"}
        self.log_dict(logged, add_dataloader_idx=False)
        shown = stage != "val_source"
        self.log(f"{stage}/miou", values["miou"], prog_bar=shown, add_dataloader_idx=False)
