"""Hung, Tsai, Liou, Lin, Yang, "Adversarial Learning for Semi-Supervised Semantic
Segmentation" (BMVC 2018): a fully convolutional discriminator gives a per-pixel confidence
map, which also selects the unlabeled pixels the segmenter learns its own predictions on."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch.nn import functional as F

from segkit.tasks.gan_losses import confidence, generator_loss
from segkit.tasks.methods.adversarial import AdversarialStep, AdversarialTerms
from segkit.tasks.methods.luc2016 import Luc2016


def self_training_mask(d_logits: torch.Tensor, gan_loss: str, threshold: float) -> torch.Tensor:
    """Hung et al.'s selection of unlabeled pixels: bool [B,H,W], true where the
    discriminator's confidence (`segkit.tasks.gan_losses.confidence` of logits [B,1,H,W]) exceeds
    ``threshold``."""
    return confidence(d_logits, gan_loss)[:, 0] > threshold


class Hung2018(Luc2016):
    """`Luc2016`'s labeled term with a per-pixel `ConfidenceDiscriminator`, plus, on unlabeled
    images (the datamodule's ``{"labeled", "unlabeled"}`` loaders when
    ``data.labeled_fraction < 1``), ``adv_weight_unlabeled * adv`` and ``semi_weight * semi``:
    cross-entropy against the segmenter's own argmax on the pixels `self_training_mask`
    selects, from iteration ``semi_start``. The discriminator also learns the unlabeled
    softmax as fake.

    When the loop has ``consistency`` (``model/method=fixmatch_hung2018``), the unlabeled images
    are learned by weak-to-strong consistency (`segkit.tasks.consistency.WeakToStrong`, shared with
    `segkit.tasks.semi`) instead of self-training: a pixel's pseudo-label counts when the
    segmenter's confidence exceeds the consistency threshold and, from ``semi_start``, the
    discriminator's confidence also exceeds ``semi_threshold`` (an AND gate, as s4GAN's: an
    OR gate at 0.2 admitted nearly every pixel). The adversarial term on unlabeled images
    judges the first strong view; an EMA teacher (``consistency.ema_momentum``) gives the
    pseudo-labels.

    Logs ``train/seg_loss``, ``train/adv_loss``, ``train/semi_loss`` and ``train/semi_ratio``
    (the fraction of unlabeled pixels selected), or with consistency ``train/sup_loss`` and its
    terms (``train/unsup_loss``, ``train/mask_ratio``, ...).

    Args:
        recon_loss, adv_weight, d_loss_weight: as for `Luc2016` (0.01 adversarial in the
            paper).
        adv_weight_unlabeled: weight of the adversarial term on unlabeled images (0.001).
        semi_weight, semi_threshold, semi_start: the self-training weight (0.1), confidence
            threshold (0.2; with consistency, the discriminator's gate) and first iteration.
    """

    learns_unlabeled: ClassVar[bool] = True
    per_pixel_discriminator: ClassVar[bool] = True

    def __init__(
        self,
        recon_loss: str = "seg",
        adv_weight: float = 0.01,
        d_loss_weight: float = 1.0,
        adv_weight_unlabeled: float = 0.001,
        semi_weight: float = 0.1,
        semi_threshold: float = 0.2,
        semi_start: int = 0,
    ) -> None:
        super().__init__(recon_loss, adv_weight, d_loss_weight)
        self.adv_weight_unlabeled = float(adv_weight_unlabeled)
        self.semi_weight, self.semi_threshold = float(semi_weight), float(semi_threshold)
        self.semi_start = int(semi_start)

    def __call__(self, step: AdversarialStep) -> AdversarialTerms:
        terms = super().__call__(step)
        if step.consistency is not None:  # the name semi-supervised runs compare by
            terms.logged["train/sup_loss"] = terms.logged["train/seg_loss"]
        if step.unlabeled is None:
            return terms
        if step.consistency is not None:
            if step.consistency.active(step.iteration):
                self._consistency_terms(step, terms)
        else:
            self._self_training_terms(step, terms)
        return terms

    def _self_training_terms(self, step: AdversarialStep, terms: AdversarialTerms) -> None:
        images = step.unlabeled["image"]
        logits = step.forward(images)
        probs = logits.float().softmax(1)
        semi_active = step.iteration >= self.semi_start
        if step.adversarial or semi_active:
            d_u = step.judge(probs, images)
        if step.adversarial:
            terms.loss = terms.loss + self.adv_weight_unlabeled * generator_loss(d_u, step.gan_loss)
        semi, ratio = torch.zeros((), device=terms.loss.device), torch.zeros(())
        if semi_active:
            semi, ratio = self.self_training_loss(
                logits, d_u.detach(), step.gan_loss, step.ignore_index
            )
            terms.loss = terms.loss + self.semi_weight * semi
        terms.logged["train/semi_loss"], terms.logged["train/semi_ratio"] = semi.detach(), ratio
        terms.fakes.append((probs.detach(), images))

    def _consistency_terms(self, step: AdversarialStep, terms: AdversarialTerms) -> None:
        """Weak-to-strong consistency gated by the discriminator (a confident pixel counts
        where the discriminator also takes the prediction for ground truth), plus the
        adversarial term on the first strong view."""

        def discriminator_selects(probs: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
            return self_training_mask(step.judge(probs, images), step.gan_loss, self.semi_threshold)

        out = step.consistency(
            step.net,
            step.forward,
            step.unlabeled,
            teacher=step.teacher,
            select=discriminator_selects if step.iteration >= self.semi_start else None,
            generator=step.generator,
            partner=step.partner,
        )
        terms.loss = terms.loss + out.loss
        terms.logged.update(out.logged)
        u_probs = out.strong_logits.float().softmax(1)
        if step.adversarial:
            d_u = step.judge(u_probs, out.strong_images)
            terms.loss = terms.loss + self.adv_weight_unlabeled * generator_loss(d_u, step.gan_loss)
        terms.fakes.append((u_probs.detach(), out.strong_images))

    def self_training_loss(
        self, logits: torch.Tensor, d_logits: torch.Tensor, gan_loss: str, ignore_index: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Hung et al.'s semi-supervised loss: (cross-entropy of the unlabeled logits against
        their own argmax on the selected pixels, fraction of pixels selected)."""
        if d_logits.shape[-2:] != logits.shape[-2:]:
            raise ValueError(
                f"method=hung2018 needs a per-pixel discriminator (ConfidenceDiscriminator): "
                f"it returned {tuple(d_logits.shape)} for label maps {tuple(logits.shape)}"
            )
        selected = self_training_mask(d_logits, gan_loss, self.semi_threshold)
        ratio = selected.float().mean()
        if not selected.any():  # cross-entropy over no pixel would be NaN
            return logits.new_zeros((), dtype=torch.float32), ratio
        pseudo = logits.detach().argmax(1).masked_fill(~selected, ignore_index)
        loss = F.cross_entropy(logits.float(), pseudo, ignore_index=ignore_index)
        return loss, ratio
