"""DACS (Tranheden, Olsson, Pinto, Svensson, "DACS: Domain Adaptation via Cross-domain Mixed
Sampling", WACV 2021): ClassMix of source images into target images, learned against source
labels and target pseudo-labels."""

from __future__ import annotations

import torch

from segkit.tasks.adaptation_losses import (
    classmix_masks,
    dacs_pixel_weights,
    mean_entropy,
    mix_source_into_target,
    weighted_cross_entropy,
)
from segkit.tasks.methods.adaptation import (
    AdaptationMethod,
    AdaptationStep,
    AdaptationTerms,
    TeacherSpec,
    check_weight,
)
from segkit.tasks.pseudo_labels import confident_pixels, pseudo_label_accuracy
from segkit.tasks.teacher import check_teacher_normalization


class DACS(AdaptationMethod):
    """Pseudo-labels from the target's weak view (the EMA teacher's with ``ema_momentum``,
    else the segmenter's in training mode, without gradient); ClassMix pastes half the
    classes of each source image onto the target image (its first strong view when the target
    has strong views); ``mix_weight`` x the cross-entropy of the mixed image against the mixed
    labels, source pixels weighted 1 and target pixels by the share of target pixels whose
    confidence exceeds ``threshold``.

    Logs ``train/mix_loss``, ``train/mix_source_ratio`` (share of mixed pixels from the
    source), ``train/pseudo_weight`` (share of confident target pixels),
    ``train/target_entropy`` and, when the target samples carry their hidden masks (synthetic
    data), ``train/pseudo_acc`` and ``train/pseudo_acc_all``. Nothing before ``adapt_start``.

    Args:
        mix_weight: weight of the mixed loss (1).
        threshold: pseudo-label confidence threshold (0.968).
        ema_momentum: None, or the momentum of the EMA teacher (0.99 in the paper).
        teacher_normalization: how the teacher's batch-norm layers normalise target images:
            "batch" (each target batch's own statistics, as DACS's teacher, which stays in
            training mode) or "running" (eval mode: the student's running statistics, mostly
            the source's).
    """

    def __init__(
        self,
        mix_weight: float = 1.0,
        threshold: float = 0.968,
        ema_momentum: float | None = 0.99,
        teacher_normalization: str = "batch",
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold={threshold} is invalid: expected 0..1")
        if ema_momentum is not None and not 0.0 < ema_momentum < 1.0:
            raise ValueError(f"ema_momentum={ema_momentum} is invalid: expected 0 < m < 1")
        check_teacher_normalization("teacher_normalization", teacher_normalization)
        self.mix_weight = check_weight("mix_weight", mix_weight)
        self.threshold = float(threshold)
        self.ema_momentum = ema_momentum
        self.teacher_normalization = teacher_normalization

    @property
    def teacher(self) -> TeacherSpec | None:
        if self.ema_momentum is None:
            return None
        return TeacherSpec(self.ema_momentum, self.teacher_normalization)

    def __call__(self, step: AdaptationStep) -> AdaptationTerms:
        source, target = step.source, step.target
        if not step.active:
            return AdaptationTerms(step.source_logits.new_zeros((), dtype=torch.float32))
        weak, images, labels = target["image"], source["image"], source["mask"]
        if weak.shape[-2:] != images.shape[-2:]:
            raise ValueError(
                f"dacs mixes source and target images of one size: got source "
                f"{tuple(images.shape[-2:])} and target {tuple(weak.shape[-2:])}; crop both "
                "domains to the same size (data.source/target crop_size)"
            )
        with torch.no_grad():
            logits = (step.teacher or step.forward)(weak)
            probs = logits.float().softmax(1)
            pseudo, confidence_map, confident = confident_pixels(probs, self.threshold)
        masks = classmix_masks(labels, step.ignore_index, step.generator)
        strong = target.get("strong")
        target_images = strong[:, 0] if strong is not None else weak
        mixed_images = mix_source_into_target(masks, images, target_images)
        mixed_labels = mix_source_into_target(masks, labels, pseudo)
        weights = mix_source_into_target(
            masks,
            torch.ones_like(confidence_map),
            dacs_pixel_weights(confidence_map, self.threshold),
        )
        mixed_logits = step.forward(mixed_images)
        loss = weighted_cross_entropy(mixed_logits, mixed_labels, weights, step.ignore_index)
        logged = {
            "train/mix_loss": loss.detach(),
            "train/mix_source_ratio": masks.float().mean(),
            "train/pseudo_weight": confident.float().mean(),
            "train/target_entropy": mean_entropy(probs),
        }
        if target.get("true_mask") is not None:
            logged.update(pseudo_label_accuracy(pseudo, confident, target["true_mask"]))
        return AdaptationTerms(self.mix_weight * loss, logged)
