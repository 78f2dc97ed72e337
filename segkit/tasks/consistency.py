"""Weak-to-strong consistency on unlabeled batches: the unsupervised loss of FixMatch (Sohn et
al. 2020) and UniMatch (Yang et al. 2023) for semantic segmentation, shared by the
semi-supervised task (`segkit.tasks.semi`) and the adversarial one (`segkit.tasks.adversarial`,
where a discriminator can also gate pseudo-labels).

An unlabeled batch (`segkit.data.unlabeled_views`) holds the weak view ``"image"`` float
[B,C,H,W], ``"strong"`` float [B,V,C,H,W] (V strong, photometric views of the same pixels) and
``"padding"`` bool [B,H,W] (pixels the weak pipeline padded). A second unlabeled batch of the
same form, the *partner*, gives CutMix its boxes' contents, as in UniMatch's code.

1. Pseudo-labels: the argmax of the weak view's softmax, from the EMA teacher when there is
   one, else from the segmenter with its dropout off; computed without gradient. The
   partner's come from the segmenter in eval mode (UniMatch). Pixels whose confidence exceeds
   ``threshold`` count (`confident_pixels`); a ``select`` callback (a discriminator) may veto
   some of them.
2. CutMix (Yun et al. 2019): each strong view of image i takes, inside a random box, the
   pixels of the same view of the partner's image i (`cutmix_boxes`, `mix`); its
   pseudo-labels, selected and padded pixels are mixed with the same box.
3. The segmenter sees the mixed strong views; the loss of each is the cross-entropy to the
   pseudo-labels at the selected pixels, summed and divided by the pixels that are not padding
   (UniMatch's normalisation, so few confident pixels mean a small loss, not a noisy one).
4. UniMatch's feature perturbation (``fp_weight`` > 0): the segmenter sees the weak view again
   with dropout (``feature_dropout``, channel-wise) on its encoder's output features
   (`feature_dropout`); its loss against the same pseudo-labels weighs ``fp_weight``, the strong
   views share ``1 - fp_weight``.

Its pieces have their own modules: the teacher and the modes a network labels in
(`segkit.tasks.teacher`), the step's random perturbations (`segkit.tasks.perturbations`) and
pseudo-label selection, loss and accuracy (`segkit.tasks.pseudo_labels`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from segkit.tasks.perturbations import cutmix_boxes, feature_dropout, mix
from segkit.tasks.pseudo_labels import (
    Selector,
    confident_pixels,
    masked_cross_entropy,
    pseudo_label_accuracy,
)
from segkit.tasks.teacher import Forward, dropout_off, evaluating


@dataclass
class ConsistencyOutput:
    """What `WeakToStrong` returns: the weighted unsupervised loss (fp32 scalar), the first
    mixed strong view's images and logits (with gradient: the adversarial task judges them),
    and the logged terms."""

    loss: torch.Tensor
    strong_images: torch.Tensor
    strong_logits: torch.Tensor
    logged: dict[str, torch.Tensor] = field(default_factory=dict)


class WeakToStrong:
    """The unsupervised loss of FixMatch or UniMatch on one unlabeled batch (module docstring).

    Args:
        threshold: confidence above which a pseudo-labelled pixel counts (0.95 in both papers).
        unsup_weight: weight of the unsupervised loss next to the supervised one.
        cutmix_prob: probability that a strong view is mixed with a box of another image.
        fp_weight: UniMatch's weight of the feature-perturbed stream (0.5); 0 turns it off
            (FixMatch).
        feature_dropout: dropout rate on encoder features for that stream (0.5).
        ema_momentum: None, or the momentum of an EMA teacher giving the pseudo-labels
            (`segkit.tasks.teacher.EMATeacher`; the task owns it).
        start: iterations trained on labeled images only before the unsupervised loss starts
            (0 in the papers, which start from ImageNet weights; a network trained from
            scratch first needs pseudo-labels worth learning).
    """

    def __init__(
        self,
        threshold: float = 0.95,
        unsup_weight: float = 1.0,
        cutmix_prob: float = 0.5,
        fp_weight: float = 0.0,
        feature_dropout: float = 0.5,
        ema_momentum: float | None = None,
        start: int = 0,
    ) -> None:
        if start < 0:
            raise ValueError(f"consistency start={start} is invalid: expected >= 0")
        for name, value in (
            ("threshold", threshold),
            ("cutmix_prob", cutmix_prob),
            ("fp_weight", fp_weight),
            ("feature_dropout", feature_dropout),
        ):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"consistency {name}={value} is invalid: expected 0..1")
        if ema_momentum is not None and not 0.0 < ema_momentum < 1.0:
            raise ValueError(f"ema_momentum={ema_momentum} is invalid: expected 0 < m < 1")
        self.threshold, self.unsup_weight = threshold, unsup_weight
        self.cutmix_prob, self.fp_weight = cutmix_prob, fp_weight
        self.feature_dropout, self.ema_momentum = feature_dropout, ema_momentum
        self.start = start

    def active(self, iteration: int) -> bool:
        """Whether the unsupervised loss applies at `iteration` (segmenter steps so far)."""
        return iteration >= self.start

    def __call__(
        self,
        net: nn.Module,
        student: Forward,
        unlabeled: dict[str, Any],
        teacher: Forward | None = None,
        select: Selector | None = None,
        generator: torch.Generator | None = None,
        partner: dict[str, Any] | None = None,
    ) -> ConsistencyOutput:
        """The loss on `unlabeled`.

        Args:
            net: the segmenter (its encoder is perturbed for the fp stream).
            student: the segmenter's training forward, images -> logits [B,C,H,W].
            unlabeled: ``{"image": weak [B,C,H,W], "strong": [B,V,C,H,W]}`` (+ ``"padding"``
                bool [B,H,W], ``"true_mask"`` [B,H,W] for ``train/pseudo_acc``).
            teacher: forward giving the pseudo-labels (the EMA teacher); None: `student`.
            select: vetoes confident pixels (a discriminator's confidence): a pixel counts
                where it is confident and ``select`` is true.
            generator: the source of CutMix boxes and feature dropout
                (`segkit.tasks.perturbations.step_generator`).
            partner: the CutMix partner, a second unlabeled batch of the same form (the
                datamodule's ``"unlabeled_mix"`` loader); required when ``cutmix_prob`` > 0.
        """
        strong = _strong_views(unlabeled)
        pseudo, selected, valid = self._pseudo_labels(
            lambda x: _with_dropout_off(net, teacher or student, x), unlabeled, select
        )
        logged = {"train/mask_ratio": (selected & valid).sum() / valid.sum().clamp(min=1)}
        true_mask = unlabeled.get("true_mask")
        if true_mask is not None:
            logged.update(pseudo_label_accuracy(pseudo, selected, true_mask))

        batch, views = strong.shape[:2]
        height, width = strong.shape[-2:]
        partner_views, partner_labels = strong, (pseudo, selected, valid)
        if self.cutmix_prob > 0:
            if partner is None:
                raise ValueError(
                    "CutMix (cutmix_prob > 0) mixes with a second unlabeled batch: the data "
                    "module gives it as 'unlabeled_mix' when data.strong_views > 0"
                )
            partner_views = _strong_views(partner)
            partner_labels = self._pseudo_labels(
                lambda x: _in_eval_mode(net, teacher or student, x), partner, select
            )
        mixed_images, mixed_labels = [], []
        for v in range(views):
            boxes = cutmix_boxes(
                batch, height, width, self.cutmix_prob, strong.device, generator=generator
            )
            mixed_images.append(mix(strong[:, v], boxes, partner_views[:, v]))
            mixed_labels.append(
                [
                    mix(own, boxes, other)
                    for own, other in zip((pseudo, selected, valid), partner_labels, strict=True)
                ]
            )
        logits = student(torch.cat(mixed_images)).float()
        strong_losses = [
            masked_cross_entropy(view_logits, *labels)
            for view_logits, labels in zip(logits.chunk(views), mixed_labels, strict=True)
        ]
        unsup = torch.stack(strong_losses).mean()
        if self.fp_weight > 0:
            with feature_dropout(net, self.feature_dropout, generator):
                fp_logits = student(unlabeled["image"]).float()
            fp_loss = masked_cross_entropy(fp_logits, pseudo, selected, valid)
            logged["train/fp_loss"] = fp_loss.detach()
            unsup = (1.0 - self.fp_weight) * unsup + self.fp_weight * fp_loss
        logged["train/unsup_loss"] = unsup.detach()
        return ConsistencyOutput(
            self.unsup_weight * unsup, mixed_images[0], logits.chunk(views)[0], logged
        )

    def _pseudo_labels(
        self,
        forward: Forward,
        unlabeled: dict[str, Any],
        select: Selector | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(pseudo-labels int64 [B,H,W], selected bool [B,H,W], not padding bool [B,H,W]) of
        an unlabeled batch's weak view, without gradient."""
        weak = unlabeled["image"]
        with torch.no_grad():
            probs = forward(weak).float().softmax(1)
            pseudo, _, selected = confident_pixels(probs, self.threshold)
            if select is not None:
                selected = selected & select(probs, weak)
        padding = unlabeled.get("padding")
        valid = ~padding.bool() if padding is not None else torch.ones_like(selected)
        return pseudo, selected, valid


def _strong_views(unlabeled: dict[str, Any]) -> torch.Tensor:
    strong = unlabeled.get("strong")
    if strong is None or strong.ndim != 5:
        raise ValueError(
            "weak-to-strong consistency needs strong views of the unlabeled images: set "
            "data.strong_views (the method presets do) and data.strong_transform"
        )
    return strong


def _with_dropout_off(net: nn.Module, forward: Forward, images: torch.Tensor) -> torch.Tensor:
    with dropout_off(net):
        return forward(images)


def _in_eval_mode(net: nn.Module, forward: Forward, images: torch.Tensor) -> torch.Tensor:
    with evaluating(net):
        return forward(images)
