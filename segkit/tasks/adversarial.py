"""Adversarial segmentation as a LightningModule: a semantic segmenter trained against a
discriminator, with manual optimization of the two networks (Lightning's GAN pattern)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch
from torch import nn
from torch.nn import functional as F

from segkit.tasks.consistency import EMATeacher, WeakToStrong, step_generator
from segkit.tasks.gan_losses import check_kind, confidence, discriminator_loss, generator_loss
from segkit.tasks.nonfinite import NonFiniteGuard
from segkit.tasks.optimization import (
    OptimizerFactory,
    SchedulerFactory,
    check_scheduler_interval,
)
from segkit.tasks.semantic_evaluation import SemanticEvaluation
from segkit.tasks.two_networks import TwoNetworkOptimization

METHODS = ("luc2016", "hung2018", "pix2pix")
RECON_LOSSES = ("seg", "l1")


def self_training_mask(d_logits: torch.Tensor, gan_loss: str, threshold: float) -> torch.Tensor:
    """Hung et al.'s selection of unlabeled pixels: bool [B,H,W], true where the
    discriminator's confidence (`segkit.tasks.gan_losses.confidence` of logits [B,1,H,W]) exceeds
    ``threshold``."""
    return confidence(d_logits, gan_loss)[:, 0] > threshold


class AdversarialSegmentation(
    SemanticEvaluation, NonFiniteGuard, TwoNetworkOptimization, L.LightningModule
):
    """Trains a semantic segmenter with a discriminator judging its label maps.

    Each training batch runs one generator (segmenter) step, then ``d_steps`` discriminator
    steps, with manual optimization: the optimizer being stepped is toggled, so the other
    network's parameters get no gradients (``toggle_optimizer``).

    - Segmenter step: ``seg_weight * recon + adv_weight * adv`` on labeled images, where recon is
      the configured loss (``recon_loss="seg"``) or the L1 distance between the softmax and the
      one-hot label (``"l1"``, pix2pix) and adv the `segkit.tasks.gan_losses.generator_loss` of the
      discriminator's logits on the softmax. ``hung2018`` adds, on unlabeled images,
      ``adv_weight_unlabeled * adv`` and ``semi_weight * semi``: cross-entropy against the
      segmenter's own argmax on the pixels `self_training_mask` selects.
    - Discriminator step: `segkit.tasks.gan_losses.discriminator_loss` times ``d_loss_weight``; real
      = one-hot ground truth, fake = the segmenter's softmax (detached; unlabeled ones too for
      ``hung2018``). At ignored pixels the real map takes the fake's values, so the
      discriminator cannot tell them apart by where labels are missing.
    - With ``consistency`` (``hung2018`` only, e.g. ``model/method=fixmatch_hung2018``), the
      unlabeled images are learned by weak-to-strong consistency
      (`segkit.tasks.consistency.WeakToStrong`, shared with `segkit.tasks.semi`) instead of
      Hung et al.'s self-training: a pixel's pseudo-label counts when the segmenter's confidence
      exceeds the consistency threshold and, from ``semi_start``, the discriminator's
      confidence also exceeds ``semi_threshold`` (an AND gate, as s4GAN's: an OR gate at 0.2
      admitted nearly every pixel). The adversarial term on unlabeled images judges
      the first strong view; an EMA teacher (``consistency.ema_momentum``) is updated after
      each segmenter step.

    Methods: ``luc2016`` (Luc et al. 2016, a `PairDiscriminator` on (image, label map)),
    ``hung2018`` (Hung et al. 2018, a per-pixel `ConfidenceDiscriminator`, semi-supervised from
    the datamodule's ``{"labeled", "unlabeled"}`` loaders when ``data.labeled_fraction < 1``),
    ``pix2pix`` (Isola et al. 2017, a `PatchDiscriminator` on (image, label map)). Other methods
    train on the labeled part only. Validation and test are the semantic evaluation
    (`SemanticEvaluation`).

    Steps: Lightning's ``trainer.global_step`` counts optimizer steps of both networks, so it
    grows by ``1 + d_steps`` per batch and ``trainer.max_steps`` counts them too. ``iteration``
    (generator steps = batches) is what ``adv_start``, ``semi_start`` and the per-step
    schedulers count.

    Logs ``train/loss`` (segmenter total), ``train/seg_loss``, ``train/adv_loss``,
    ``train/d_loss``, ``train/d_real_acc``, ``train/d_fake_acc`` (discriminator accuracy at 0.5
    confidence) and, for ``hung2018``, ``train/semi_loss`` and ``train/semi_ratio`` (the
    fraction of unlabeled pixels selected).

    Args:
        segmenter: semantic network, images [B,C_in,H,W] -> logits [B,C,H,W] (``{"out",
            "aux"}`` in training mode with an auxiliary head).
        discriminator: `segkit.models.discriminators` contract: ``(label_map, image)`` ->
            logits [B,1,h,w]; its ``conditional`` attribute says whether it reads the image.
        loss: the segmentation loss ``loss(logits, mask)`` on labeled images.
        optimizer, scheduler: segmenter optimizer and scheduler factories (as for
            `SemanticSegmentation`); d_optimizer, d_scheduler: the discriminator's.
        method: "luc2016", "hung2018" or "pix2pix".
        gan_loss: "bce", "lsgan" or "hinge" (`segkit.tasks.gan_losses`).
        seg_weight, recon_loss: weight and kind ("seg" or "l1") of the supervised term.
        adv_weight, adv_weight_unlabeled: weights of the adversarial term on labeled and
            unlabeled images.
        semi_weight, semi_threshold, semi_start: Hung et al.'s self-training weight, confidence
            threshold and first iteration.
        adv_start: warm-up iterations trained without the adversarial terms (the discriminator
            learns meanwhile).
        d_steps: discriminator steps per segmenter step (on the same batch).
        d_loss_weight: scale of the discriminator loss (0.5 in pix2pix).
        real_label: target of real inputs; below 1 is one-sided label smoothing.
        consistency: optional weak-to-strong consistency on unlabeled images (see above); it
            replaces ``semi_weight``'s self-training.
        gradient_clip_val: clip each network's gradient norm to this (Lightning's
            ``trainer.gradient_clip_val`` does not apply to manual optimization).
        num_classes, ignore_index, class_names, scheduler_interval, channels_last,
            aux_loss_weight, on_nonfinite, inference: as for `SemanticSegmentation`.
    """

    def __init__(
        self,
        segmenter: nn.Module,
        discriminator: nn.Module,
        loss: nn.Module,
        optimizer: OptimizerFactory,
        d_optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        d_scheduler: SchedulerFactory | None = None,
        method: str = "luc2016",
        gan_loss: str = "bce",
        seg_weight: float = 1.0,
        recon_loss: str = "seg",
        adv_weight: float = 0.1,
        adv_weight_unlabeled: float = 0.001,
        semi_weight: float = 0.1,
        semi_threshold: float = 0.2,
        semi_start: int = 0,
        adv_start: int = 0,
        d_steps: int = 1,
        d_loss_weight: float = 1.0,
        real_label: float = 1.0,
        gradient_clip_val: float | None = None,
        consistency: WeakToStrong | None = None,
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
        _check_choice("method", method, METHODS)
        _check_choice("recon_loss", recon_loss, RECON_LOSSES)
        check_scheduler_interval(scheduler_interval)
        check_kind(gan_loss)
        if d_steps < 1:
            raise ValueError(f"d_steps={d_steps} is invalid: expected at least 1")
        if not 0.0 < real_label <= 1.0:
            raise ValueError(f"real_label={real_label} is invalid: expected a value in (0, 1]")
        if consistency is not None and method != "hung2018":
            raise ValueError(
                f"consistency with method={method}: only hung2018 learns from unlabeled images"
            )
        self.automatic_optimization = False
        # Modules and factories stay out of hparams: checkpoints load with weights_only=True.
        self.save_hyperparameters(
            ignore=[
                "segmenter",
                "discriminator",
                "loss",
                "optimizer",
                "d_optimizer",
                "scheduler",
                "d_scheduler",
                "consistency",
            ],
            logger=False,
        )
        self.net, self.discriminator, self.loss = segmenter, discriminator, loss
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.d_optimizer_factory, self.d_scheduler_factory = d_optimizer, d_scheduler
        self._init_evaluation(num_classes, ignore_index, class_names, inference)
        self._init_nonfinite(on_nonfinite)
        self.consistency = consistency
        momentum = consistency.ema_momentum if consistency is not None else None
        self.teacher = EMATeacher(segmenter, momentum) if momentum is not None else None

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        labeled = batch.get("labeled", batch)  # data.labeled_fraction < 1: a dict of two batches
        # Only Hung et al. learn from unlabeled images; the other methods use the labeled part.
        unlabeled = batch.get("unlabeled") if self.hparams.method == "hung2018" else None
        partner = batch.get("unlabeled_mix")  # CutMix partners of weak-to-strong consistency
        g_opt, d_opt = self.optimizers()
        images, mask = labeled["image"], labeled["mask"]
        logged: dict[str, torch.Tensor] = {}

        self.toggle_optimizer(g_opt)
        fakes, g_loss, g_logged = self._segmenter_loss(images, mask, unlabeled, partner)
        logged.update(g_logged)
        if not self.usable_loss(g_loss, g_logged):  # on_nonfinite=skip: the whole batch
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
        real = self._real_map(mask, fakes[0][0])
        for _ in range(self.hparams.d_steps):
            d_real = self._judge(real, images)
            d_fake = torch.cat([self._judge(fake, image).flatten() for fake, image in fakes])
            d_loss = self.hparams.d_loss_weight * discriminator_loss(
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

    def _segmenter_loss(
        self,
        images: torch.Tensor,
        mask: torch.Tensor,
        unlabeled: dict[str, Any] | None,
        partner: dict[str, Any] | None = None,
    ) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], torch.Tensor, dict[str, torch.Tensor]]:
        """The segmenter's loss; returns ([(detached softmax, image)] for the discriminator
        step, loss, logged terms)."""
        hp = self.hparams
        adversarial = self.iteration >= hp.adv_start
        if hp.recon_loss == "seg":
            recon, logits, logged = self._supervised(images, mask)
        else:
            logits = self._train_forward(images)[0]
            recon, logged = self._l1_to_one_hot(logits, mask), {}
        probs = logits.float().softmax(1)
        adv = generator_loss(self._judge(probs, images), hp.gan_loss) if adversarial else None
        loss = hp.seg_weight * recon + (hp.adv_weight * adv if adv is not None else 0.0)
        logged["train/seg_loss"] = recon.detach()
        if self.consistency is not None:  # the name semi-supervised runs compare by
            logged["train/sup_loss"] = recon.detach()
        logged["train/adv_loss"] = adv.detach() if adv is not None else torch.zeros(())
        fakes = [(probs.detach(), images)]
        if unlabeled is not None and self.consistency is not None:
            if self.consistency.active(self.iteration):
                u_loss, u_fake, u_logged = self._consistency_loss(unlabeled, adversarial, partner)
                loss = loss + u_loss
                logged.update(u_logged)
                fakes.append(u_fake)
        elif unlabeled is not None:
            u_images = unlabeled["image"]
            u_logits = self._train_forward(u_images)[0]
            u_probs = u_logits.float().softmax(1)
            semi_active = self.iteration >= hp.semi_start
            if adversarial or semi_active:
                d_u = self._judge(u_probs, u_images)
            if adversarial:
                loss = loss + hp.adv_weight_unlabeled * generator_loss(d_u, hp.gan_loss)
            semi, ratio = torch.zeros((), device=loss.device), torch.zeros(())
            if semi_active:
                semi, ratio = self._self_training_loss(u_logits, d_u.detach())
                loss = loss + hp.semi_weight * semi
            logged["train/semi_loss"], logged["train/semi_ratio"] = semi.detach(), ratio
            fakes.append((u_probs.detach(), u_images))
        return fakes, loss, logged

    def _consistency_loss(
        self, unlabeled: dict[str, Any], adversarial: bool, partner: dict[str, Any] | None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]:
        """Weak-to-strong consistency gated by the discriminator (a confident pixel counts
        where the discriminator also takes the prediction for ground truth), plus the
        adversarial term on the first strong view: (loss, (detached softmax, image) for the
        discriminator step, logged terms)."""
        hp = self.hparams

        def discriminator_selects(probs: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
            return self_training_mask(self._judge(probs, images), hp.gan_loss, hp.semi_threshold)

        teacher = self.teacher
        out = self.consistency(
            self.net,
            lambda x: self._train_forward(x)[0],
            unlabeled,
            teacher=teacher.as_forward(self.net, self.memory_format) if teacher else None,
            select=discriminator_selects if self.iteration >= hp.semi_start else None,
            generator=step_generator(self.trainer.global_step, self.global_rank),
            partner=partner,
        )
        loss, logged = out.loss, dict(out.logged)
        u_probs = out.strong_logits.float().softmax(1)
        if adversarial:
            d_u = self._judge(u_probs, out.strong_images)
            loss = loss + hp.adv_weight_unlabeled * generator_loss(d_u, hp.gan_loss)
        return loss, (u_probs.detach(), out.strong_images), logged

    def _judge(self, label_map: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """The discriminator's logits on a label map (with its image when conditional)."""
        disc = self.discriminator
        return disc(label_map, image if getattr(disc, "conditional", False) else None)

    def _one_hot(self, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(one-hot float [B,C,H,W] with zeros at ignored pixels, valid bool [B,1,H,W])."""
        valid = mask != self.hparams.ignore_index
        one_hot = F.one_hot(torch.where(valid, mask, 0), self.hparams.num_classes)
        return one_hot.permute(0, 3, 1, 2).float() * valid[:, None], valid[:, None]

    def _real_map(self, mask: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        one_hot, valid = self._one_hot(mask)
        return torch.where(valid, one_hot, fake)

    def _l1_to_one_hot(self, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """pix2pix's L1 term: mean |softmax - one-hot| over the valid pixels' channels."""
        one_hot, valid = self._one_hot(mask)
        diff = (logits.float().softmax(1) - one_hot).abs() * valid
        return diff.sum() / (valid.sum() * logits.shape[1]).clamp(min=1)

    def _self_training_loss(
        self, logits: torch.Tensor, d_logits: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Hung et al.'s semi-supervised loss: (cross-entropy of the unlabeled logits against
        their own argmax on the selected pixels, fraction of pixels selected)."""
        if d_logits.shape[-2:] != logits.shape[-2:]:
            raise ValueError(
                f"method=hung2018 needs a per-pixel discriminator (ConfidenceDiscriminator): "
                f"it returned {tuple(d_logits.shape)} for label maps {tuple(logits.shape)}"
            )
        selected = self_training_mask(d_logits, self.hparams.gan_loss, self.hparams.semi_threshold)
        ratio = selected.float().mean()
        if not selected.any():  # cross-entropy over no pixel would be NaN
            return logits.new_zeros((), dtype=torch.float32), ratio
        pseudo = logits.detach().argmax(1).masked_fill(~selected, self.hparams.ignore_index)
        loss = F.cross_entropy(logits.float(), pseudo, ignore_index=self.hparams.ignore_index)
        return loss, ratio


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{name}={value!r} is invalid: expected one of {', '.join(choices)}")
