"""Adversarial segmentation as a LightningModule: a semantic segmenter trained against a
discriminator, with manual optimization of the two networks (Lightning's GAN pattern). The
methods (Luc et al. 2016, Hung et al. 2018, pix2pix) are objects in `segkit.tasks.methods`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch
from torch import nn

from segkit.tasks.consistency import WeakToStrong
from segkit.tasks.gan_losses import check_kind, confidence, discriminator_loss, one_hot_labels
from segkit.tasks.methods.adversarial import AdversarialMethod, AdversarialStep
from segkit.tasks.nonfinite import NonFiniteGuard
from segkit.tasks.optimization import (
    OptimizerFactory,
    SchedulerFactory,
    check_scheduler_interval,
)
from segkit.tasks.perturbations import step_generator
from segkit.tasks.semantic_evaluation import SemanticEvaluation
from segkit.tasks.teacher import EMATeacher
from segkit.tasks.two_networks import TwoNetworkOptimization


class AdversarialSegmentation(
    SemanticEvaluation, NonFiniteGuard, TwoNetworkOptimization, L.LightningModule
):
    """Trains a semantic segmenter with a discriminator judging its label maps.

    Each training batch runs one generator (segmenter) step, then ``d_steps`` discriminator
    steps, with manual optimization: the optimizer being stepped is toggled, so the other
    network's parameters get no gradients (``toggle_optimizer``).

    - Segmenter step: ``seg_weight`` x the supervised term plus the other terms the
      ``method`` object returns (`segkit.tasks.methods.adversarial`): `Luc2016`'s adversarial
      term on labeled images, `Pix2Pix`'s with an L1 supervised term, or `Hung2018`'s, which
      also learns from the unlabeled images of ``{"labeled", "unlabeled"}`` batches
      (``data.labeled_fraction < 1``), by self-training or, with ``consistency``, by
      weak-to-strong consistency gated by the discriminator.
    - Discriminator step: `segkit.tasks.gan_losses.discriminator_loss` times the method's
      ``d_loss_weight``; real = one-hot ground truth, fake = the segmenter's softmax maps the
      method returned (detached). At ignored pixels the real map takes the fake's values, so
      the discriminator cannot tell them apart by where labels are missing.
    - With ``consistency.ema_momentum`` an `EMATeacher` gives the pseudo-labels, updated
      after each segmenter step (``teacher.net.*`` in the checkpoint).

    Validation and test are the semantic evaluation (`SemanticEvaluation`).

    Steps: Lightning's ``trainer.global_step`` counts optimizer steps of both networks, so it
    grows by ``1 + d_steps`` per batch and ``trainer.max_steps`` counts them too. ``iteration``
    (generator steps = batches) is what ``adv_start``, the method's warm-ups and the per-step
    schedulers count.

    Logs ``train/loss`` (segmenter total), the method's terms (``train/seg_loss``,
    ``train/adv_loss``, ...), ``train/d_loss``, ``train/d_real_acc`` and ``train/d_fake_acc``
    (discriminator accuracy at 0.5 confidence).

    Args:
        net: the segmenter, images [B,C_in,H,W] -> logits [B,C,H,W] (``{"out",
            "aux"}`` in training mode with an auxiliary head).
        discriminator: `segkit.models.discriminators` contract: ``(label_map, image)`` ->
            logits [B,1,h,w]; its ``conditional`` attribute says whether it reads the image.
        loss: the segmentation loss ``loss(logits, mask)`` on labeled images.
        optimizer, scheduler: segmenter optimizer and scheduler factories (as for
            `SemanticSegmentation`); d_optimizer, d_scheduler: the discriminator's.
        method: the method object (`segkit.tasks.methods`: ``Luc2016``, ``Hung2018``,
            ``Pix2Pix``).
        seg_weight: weight of the supervised term (100 in pix2pix).
        consistency: optional weak-to-strong consistency (`segkit.tasks.consistency`) for the
            unlabeled images of methods that `learns_unlabeled`.
        gan_loss: "bce", "lsgan" or "hinge" (`segkit.tasks.gan_losses`).
        adv_start: warm-up iterations trained without the adversarial terms (the discriminator
            learns meanwhile).
        d_steps: discriminator steps per segmenter step (on the same batch).
        real_label: target of real inputs; below 1 is one-sided label smoothing.
        gradient_clip_val: clip each network's gradient norm to this (Lightning's
            ``trainer.gradient_clip_val`` does not apply to manual optimization).
        num_classes, ignore_index, class_names, scheduler_interval, channels_last,
            aux_loss_weight, on_nonfinite, inference: as for `SemanticSegmentation`.
    """

    def __init__(
        self,
        net: nn.Module,
        discriminator: nn.Module,
        loss: nn.Module,
        optimizer: OptimizerFactory,
        d_optimizer: OptimizerFactory,
        method: AdversarialMethod,
        scheduler: SchedulerFactory | None = None,
        d_scheduler: SchedulerFactory | None = None,
        seg_weight: float = 1.0,
        consistency: WeakToStrong | None = None,
        gan_loss: str = "bce",
        adv_start: int = 0,
        d_steps: int = 1,
        real_label: float = 1.0,
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
        if not isinstance(method, AdversarialMethod):
            raise ValueError(
                f"method={method!r} is invalid: expected a segkit.tasks.methods object "
                "(a model/method preset, docs/adversarial.md)"
            )
        check_scheduler_interval(scheduler_interval)
        check_kind(gan_loss)
        if d_steps < 1:
            raise ValueError(f"d_steps={d_steps} is invalid: expected at least 1")
        if not 0.0 < real_label <= 1.0:
            raise ValueError(f"real_label={real_label} is invalid: expected a value in (0, 1]")
        if consistency is not None and not method.learns_unlabeled:
            raise ValueError(
                f"consistency with method={type(method).__name__}: it does not learn from "
                "unlabeled images"
            )
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
                "consistency",
            ],
            logger=False,
        )
        self.net, self.discriminator, self.loss = net, discriminator, loss
        self.method, self.consistency = method, consistency
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.d_optimizer_factory, self.d_scheduler_factory = d_optimizer, d_scheduler
        self._init_evaluation(num_classes, ignore_index, class_names, inference)
        self._init_nonfinite(on_nonfinite)
        momentum = consistency.ema_momentum if consistency is not None else None
        self.teacher = EMATeacher(net, momentum) if momentum is not None else None

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        labeled = batch.get("labeled", batch)  # data.labeled_fraction < 1: a dict of two batches
        g_opt, d_opt = self.optimizers()
        images, mask = labeled["image"], labeled["mask"]

        self.toggle_optimizer(g_opt)
        terms = self.method(self._step(batch, labeled))
        g_loss, logged = self.hparams.seg_weight * terms.supervised + terms.loss, terms.logged
        if not self.usable_loss(g_loss, logged):  # on_nonfinite=skip: the whole batch
            self.untoggle_optimizer(g_opt)
            return
        self.manual_backward(g_loss)
        self._clip(g_opt)
        g_opt.step()
        g_opt.zero_grad(set_to_none=True)
        self.untoggle_optimizer(g_opt)
        if self.teacher is not None:
            self.teacher.update(self.net)

        self.toggle_optimizer(d_opt)
        fakes = terms.fakes
        real = self._real_map(mask, fakes[0][0])
        for _ in range(self.hparams.d_steps):
            d_real = self._judge(real, images)
            d_fake = torch.cat([self._judge(fake, image).flatten() for fake, image in fakes])
            d_loss = self.method.d_loss_weight * discriminator_loss(
                d_real, d_fake, self.hparams.gan_loss, self.hparams.real_label
            )
            if not self.usable_loss(d_loss, {"train/d_loss": d_loss}):
                continue  # on_nonfinite=skip: this discriminator step
            self.manual_backward(d_loss)
            self._clip(d_opt)
            d_opt.step()
            d_opt.zero_grad(set_to_none=True)
        self.untoggle_optimizer(d_opt)

        kind = self.hparams.gan_loss
        logged["train/d_loss"] = d_loss.detach()
        logged["train/d_real_acc"] = (confidence(d_real.detach(), kind) > 0.5).float().mean()
        logged["train/d_fake_acc"] = (confidence(d_fake.detach(), kind) <= 0.5).float().mean()
        self.log("train/loss", g_loss.detach(), prog_bar=True, batch_size=images.shape[0])
        self.log_dict(logged, batch_size=images.shape[0])
        if self.hparams.scheduler_interval == "step":
            self._step_schedulers()

    def _step(self, batch: dict[str, Any], labeled: dict[str, Any]) -> AdversarialStep:
        """The batch and what the method may use for it: unlabeled images only for methods
        that learn from them, with the CutMix partners of weak-to-strong consistency."""
        teacher = self.teacher
        return AdversarialStep(
            labeled=labeled,
            unlabeled=batch.get("unlabeled") if self.method.learns_unlabeled else None,
            partner=batch.get("unlabeled_mix"),
            supervised=self._supervised,
            forward=lambda images: self._train_forward(images)[0],
            judge=self._judge,
            net=self.net,
            adversarial=self.iteration >= self.hparams.adv_start,
            iteration=self.iteration,
            gan_loss=self.hparams.gan_loss,
            num_classes=self.hparams.num_classes,
            ignore_index=self.hparams.ignore_index,
            consistency=self.consistency,
            teacher=teacher.as_forward(self.net, self.memory_format) if teacher else None,
            generator=step_generator(self.trainer.global_step, self.global_rank),
        )

    def _judge(self, label_map: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """The discriminator's logits on a label map (with its image when conditional)."""
        disc = self.discriminator
        return disc(label_map, image if getattr(disc, "conditional", False) else None)

    def _real_map(self, mask: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        one_hot, valid = one_hot_labels(mask, self.hparams.num_classes, self.hparams.ignore_index)
        return torch.where(valid, one_hot, fake)
