"""Unsupervised domain adaptation for semantic segmentation as a LightningModule: a segmenter
learns from a labeled source domain and an unlabeled target domain, with manual optimization of
the segmenter and, for methods that need one, a discriminator. The methods are objects in
`segkit.tasks.methods` (one file each)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch
from torch import nn
from torchmetrics import MeanMetric

from segkit.metrics import SegmentationScores
from segkit.tasks.gan_losses import check_kind, confidence, discriminator_loss
from segkit.tasks.methods.adaptation import AdaptationMethod, AdaptationStep
from segkit.tasks.nonfinite import NonFiniteGuard
from segkit.tasks.optimization import OptimizerFactory, SchedulerFactory, check_scheduler_interval
from segkit.tasks.perturbations import step_generator
from segkit.tasks.semantic_evaluation import SemanticEvaluation
from segkit.tasks.teacher import EMATeacher
from segkit.tasks.two_networks import TwoNetworkOptimization


class DomainAdaptation(
    SemanticEvaluation, NonFiniteGuard, TwoNetworkOptimization, L.LightningModule
):
    """Trains a segmenter on labeled source images and adapts it to unlabeled target images.

    Training batches are ``{"source": semantic batch, "target": {"image": [B,C,H,W],
    ("strong": [B,V,C,H,W]), ("true_mask"), "name"}}`` (`segkit.data.domain_pair`). Every
    method has the supervised loss on source images, as the method's `prepare_source` gives
    them (FDA restyles them); target labels never reach it. Each batch
    the loop adds what the ``method`` object returns (`segkit.tasks.methods.adaptation`): its
    terms count from iteration ``adapt_start``. A method that `needs_discriminator` also
    returns (source, target) maps, and ``d_steps`` discriminator steps follow the segmenter's,
    source maps = real, target maps = fake. A method asking for a teacher gets an
    `EMATeacher`, updated after each segmenter step (its weights are ``teacher.net.*`` in the
    checkpoint).

    Validation: the target's val split logs ``val/...`` (what ``monitor`` reads), the source's
    (the datamodule's second loader) ``val_source/...``; test is the target's.

    Logs ``train/loss``, ``train/sup_loss``, the method's terms and, with a discriminator,
    ``train/d_loss``, ``train/d_source_acc`` and ``train/d_target_acc``.

    Steps: as in `segkit.tasks.two_networks` (``trainer.max_steps`` counts the
    discriminator's steps too; ``iteration`` counts batches).

    Args:
        net: the segmenter, images [B,C_in,H,W] -> logits [B,C,H,W] (``{"out",
            "aux"}`` in training mode with an auxiliary head, used on source images only).
        loss: the supervised loss ``loss(logits, mask)`` on source images.
        optimizer, scheduler: the segmenter's optimizer and scheduler factories.
        method: the method object (an `AdaptationMethod` of `segkit.tasks.methods`, e.g.
            ``ADVENT``, ``DACS``; its ``model/method`` preset builds it).
        discriminator, d_optimizer, d_scheduler: the discriminator (a
            `segkit.models.discriminators` module on C-channel maps, e.g.
            `ConfidenceDiscriminator`) and its factories: required by methods that
            `needs_discriminator`, refused by the others.
        gan_loss: "bce", "lsgan" or "hinge" (`segkit.tasks.gan_losses`).
        adapt_start: iterations on source images only before the method's terms start.
        d_steps: discriminator steps per segmenter step.
        gradient_clip_val: clip each network's gradient norm to this.
        num_classes, ignore_index, class_names, scheduler_interval, channels_last,
            aux_loss_weight, on_nonfinite, inference: as for `SemanticSegmentation`.
    """

    def __init__(
        self,
        net: nn.Module,
        loss: nn.Module,
        optimizer: OptimizerFactory,
        method: AdaptationMethod,
        scheduler: SchedulerFactory | None = None,
        discriminator: nn.Module | None = None,
        d_optimizer: OptimizerFactory | None = None,
        d_scheduler: SchedulerFactory | None = None,
        gan_loss: str = "bce",
        adapt_start: int = 0,
        d_steps: int = 1,
        gradient_clip_val: float | None = None,
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
        if not isinstance(method, AdaptationMethod):
            raise ValueError(
                f"method={method!r} is invalid: expected a segkit.tasks.methods object "
                "(a model/method preset, docs/domain_adaptation.md)"
            )
        needs = method.needs_discriminator
        if needs != (discriminator is not None) or (needs and d_optimizer is None):
            raise ValueError(
                f"method={type(method).__name__}: "
                + (
                    "needs a discriminator and its d_optimizer (model/method presets set them)"
                    if needs
                    else "trains no discriminator: set model.discriminator=null"
                )
            )
        check_scheduler_interval(scheduler_interval)
        check_kind(gan_loss)
        if d_steps < 1:
            raise ValueError(f"d_steps={d_steps} is invalid: expected at least 1")
        if adapt_start < 0:
            raise ValueError(f"adapt_start={adapt_start} is invalid: expected >= 0")
        self.automatic_optimization = False
        # Modules, factories and the method stay out of hparams: checkpoints load with
        # weights_only=True (the run config in the checkpoint holds the method's values).
        self.save_hyperparameters(
            ignore=[
                "net",
                "discriminator",
                "loss",
                "optimizer",
                "d_optimizer",
                "scheduler",
                "d_scheduler",
                "method",
            ],
            logger=False,
        )
        self.net, self.discriminator, self.loss = net, discriminator, loss
        self.method = method
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.d_optimizer_factory, self.d_scheduler_factory = d_optimizer, d_scheduler
        self._init_evaluation(num_classes, ignore_index, class_names, inference)
        self._init_nonfinite(on_nonfinite)
        names = list(class_names) if class_names else [str(i) for i in range(num_classes)]
        self.source_val_scores = SegmentationScores(num_classes, ignore_index, names)
        self.source_val_loss = MeanMetric()
        self._source_validated = False
        spec = method.teacher
        self.teacher = EMATeacher(net, spec.momentum, spec.normalization) if spec else None

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        if not isinstance(batch, dict) or "source" not in batch or "target" not in batch:
            raise ValueError(
                "domain adaptation trains on {'source', 'target'} batches: use a domain pair "
                "data config (data=synthetic_shift, data=gta5_cityscapes; "
                "docs/domain_adaptation.md)"
            )
        source, target = batch["source"], batch["target"]
        optimizers = self.optimizers()
        g_opt = optimizers[0] if isinstance(optimizers, list) else optimizers

        self.toggle_optimizer(g_opt)
        loss, logged, maps = self._segmenter_loss(source, target)
        if not self.usable_loss(loss, logged):  # on_nonfinite=skip: the whole batch
            self.untoggle_optimizer(g_opt)
            return
        self.manual_backward(loss)
        self._clip(g_opt)
        g_opt.step()
        g_opt.zero_grad(set_to_none=True)
        self.untoggle_optimizer(g_opt)
        if self.teacher is not None:
            self.teacher.update(self.net)
        if maps is not None:
            logged.update(self._discriminator_step(optimizers[1], *maps))

        size = source["image"].shape[0]
        self.log("train/loss", loss.detach(), prog_bar=True, batch_size=size)
        self.log_dict(logged, batch_size=size)
        if self.hparams.scheduler_interval == "step":
            self._step_schedulers()

    def _segmenter_loss(
        self, source: dict[str, Any], target: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], tuple[torch.Tensor, torch.Tensor] | None]:
        """(loss, logged terms, detached (source, target) maps for the discriminator or
        None)."""
        source = self.method.prepare_source(source, target)
        sup, source_logits, logged = self._supervised(source["image"], source["mask"])
        logged["train/sup_loss"] = sup.detach()
        teacher = self.teacher
        step = AdaptationStep(
            source=source,
            target=target,
            source_logits=source_logits,
            active=self.iteration >= self.hparams.adapt_start,
            forward=lambda images: self._train_forward(images)[0],
            discriminator=self.discriminator,
            teacher=teacher.as_forward(self.net, self.memory_format) if teacher else None,
            generator=step_generator(self.trainer.global_step, self.global_rank),
            gan_loss=self.hparams.gan_loss,
            ignore_index=self.hparams.ignore_index,
        )
        terms = self.method(step)
        logged.update(terms.logged)
        return sup + terms.loss, logged, terms.judged

    def _discriminator_step(
        self, d_opt: Any, source_map: torch.Tensor, target_map: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """``d_steps`` discriminator updates: source maps are real, target maps fake."""
        kind = self.hparams.gan_loss
        self.toggle_optimizer(d_opt)
        for _ in range(self.hparams.d_steps):
            d_source = self.discriminator(source_map)
            d_target = self.discriminator(target_map)
            d_loss = discriminator_loss(d_source, d_target, kind)
            if not self.usable_loss(d_loss, {"train/d_loss": d_loss}):
                continue  # on_nonfinite=skip: this discriminator step
            self.manual_backward(d_loss)
            self._clip(d_opt)
            d_opt.step()
            d_opt.zero_grad(set_to_none=True)
        self.untoggle_optimizer(d_opt)
        return {
            "train/d_loss": d_loss.detach(),
            "train/d_source_acc": (confidence(d_source.detach(), kind) > 0.5).float().mean(),
            "train/d_target_acc": (confidence(d_target.detach(), kind) <= 0.5).float().mean(),
        }

    def validation_step(
        self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0
    ) -> torch.Tensor:
        if dataloader_idx == 1:  # the source domain's val split (segkit.data.domain_pair)
            self._source_validated = True
            return self._evaluate(batch, "val_source", self.source_val_scores, self.source_val_loss)
        return super().validation_step(batch, batch_idx)

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        if self._source_validated:
            self._log_scores("val_source", self.source_val_scores)
            self._source_validated = False
