"""Segmentation losses that smp and torch do not provide as configurable modules.

Every loss is called as ``loss(logits float [B,C,H,W], mask int64 [B,H,W]) -> scalar``, with
pixels equal to ``ignore_index`` left out. The smp losses (Dice, Focal, Lovasz, Jaccard,
Tversky) are used directly from ``segmentation_models_pytorch.losses`` in ``conf/loss/``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def _weights_buffer(class_weights: Sequence[float] | None) -> torch.Tensor | None:
    if class_weights is None:
        return None
    if isinstance(class_weights, str):
        raise ValueError(
            f"class_weights={class_weights!r} was not resolved: the training entry point "
            "replaces 'auto' with weights computed from the training set"
        )
    return torch.as_tensor(list(class_weights), dtype=torch.float32)


class CrossEntropy(nn.Module):
    """Pixel-wise cross-entropy with optional class weights and label smoothing.

    ``torch.nn.CrossEntropyLoss`` with the weights given as a list (YAML) and kept as a
    buffer, so they follow the module to its device.
    """

    def __init__(
        self,
        ignore_index: int = 255,
        class_weights: Sequence[float] | None = None,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing
        self.register_buffer("class_weights", _weights_buffer(class_weights), persistent=False)

    def forward(self, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(
            logits,
            mask,
            weight=self.class_weights,
            ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing,
        )


class OhemCrossEntropy(nn.Module):
    """Cross-entropy over the hardest pixels only (online hard example mining).

    As in PSPNet/OCNet and mmsegmentation's ``OHEMPixelSampler``: pixels whose predicted
    probability of the true class is below ``thresh`` are kept, and at least
    ``min_kept`` pixels per image (the hardest ones) whatever their probability.
    The loss is the (class-weighted) mean over the kept pixels.
    """

    def __init__(
        self,
        ignore_index: int = 255,
        thresh: float = 0.7,
        min_kept: int = 100_000,
        class_weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 < thresh <= 1.0:
            raise ValueError(f"thresh={thresh} is invalid: expected a probability in (0, 1]")
        if min_kept < 0:
            raise ValueError(f"min_kept={min_kept} is invalid: expected >= 0")
        self.ignore_index, self.thresh, self.min_kept = ignore_index, thresh, min_kept
        self.register_buffer("class_weights", _weights_buffer(class_weights), persistent=False)

    def forward(self, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        pixel_loss = F.cross_entropy(logits, mask, ignore_index=self.ignore_index, reduction="none")
        valid = mask != self.ignore_index
        kept = valid & self._hard_pixels(pixel_loss.detach(), valid, logits.shape[0])
        weights = kept.to(pixel_loss.dtype)
        if self.class_weights is not None:
            weights = weights * self.class_weights[mask.clamp(0, logits.shape[1] - 1)]
        # An all-ignored batch gives 0 (with a gradient path), not NaN.
        return (pixel_loss * weights).sum() / weights.sum().clamp_min(1e-12)

    def _hard_pixels(
        self, pixel_loss: torch.Tensor, valid: torch.Tensor, batch: int
    ) -> torch.Tensor:
        true_prob = torch.exp(-pixel_loss)  # softmax probability of the true class
        probs = true_prob[valid]
        if probs.numel() == 0:
            return valid
        threshold = torch.tensor(self.thresh, device=probs.device, dtype=probs.dtype)
        min_kept = min(self.min_kept * batch, probs.numel())
        if min_kept > 0:
            # Keep at least min_kept pixels: raise the threshold to the min_kept-th hardest.
            kth = torch.kthvalue(probs.float(), min_kept).values.to(probs.dtype)
            threshold = torch.maximum(threshold, kth)
        return true_prob <= threshold


class WeightedSum(nn.Module):
    """A weighted sum of losses, e.g. cross-entropy + Dice, configured in YAML.

    Args:
        terms: ``{name: {"loss": module, "weight": float}}`` (or a list of such dicts, named
            by position). Each term's value is kept in ``last_terms`` after every call, so
            tasks can log them (``train/loss/<name>``).
    """

    def __init__(
        self, terms: Mapping[str, Mapping[str, Any]] | Sequence[Mapping[str, Any]]
    ) -> None:
        super().__init__()
        items = (
            terms.items()
            if isinstance(terms, Mapping)
            else ((str(i), term) for i, term in enumerate(terms))
        )
        self.losses = nn.ModuleDict()
        self.weights: dict[str, float] = {}
        for name, term in items:
            if "loss" not in term:
                raise ValueError(f"loss term {name!r} has no 'loss': expected {{loss, weight}}")
            self.losses[name] = term["loss"]
            self.weights[name] = float(term.get("weight", 1.0))
        if not self.losses:
            raise ValueError("WeightedSum needs at least one term")
        self.last_terms: dict[str, torch.Tensor] = {}

    def forward(self, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        self.last_terms = {name: loss(logits, mask) for name, loss in self.losses.items()}
        return sum(self.weights[n] * value for n, value in self.last_terms.items())


def median_frequency_weights(masks: Any, num_classes: int, ignore_index: int = 255) -> list[float]:
    """Class weights by median frequency balancing (Eigen & Fergus 2015; SegNet).

    ``weight_c = median(freq) / freq_c`` where ``freq_c`` is the number of pixels of class c
    divided by the number of (non-ignored) pixels of the images in which c appears. Classes
    that never appear get weight 0.

    Args:
        masks: iterable of int64 masks [H,W] or batches [B,H,W].
    """
    class_pixels = torch.zeros(num_classes, dtype=torch.float64)
    image_pixels = torch.zeros(num_classes, dtype=torch.float64)
    for batch in masks:
        batch = batch if batch.dim() == 3 else batch.unsqueeze(0)
        for mask in batch:
            labels = mask[mask != ignore_index]
            if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
                raise ValueError(
                    f"mask label {int(labels.max())} is outside 0..{num_classes - 1} "
                    f"(ignore_index {ignore_index})"
                )
            counts = torch.bincount(labels.flatten(), minlength=num_classes).double()
            class_pixels += counts
            image_pixels += (counts > 0).double() * labels.numel()
    present = class_pixels > 0
    if not present.any():
        raise ValueError("no labelled pixel found: cannot compute class weights")
    freq = torch.where(present, class_pixels / image_pixels.clamp_min(1), torch.zeros(()))
    median = torch.quantile(freq[present], 0.5)  # the mean of the middle two for even counts
    weights = torch.where(present, median / freq.clamp_min(1e-12), torch.zeros(()))
    return [round(float(w), 6) for w in weights]
