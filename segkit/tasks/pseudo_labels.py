"""Pseudo-labels from probabilities: the confident pixels, the masked loss learned from them
and how often they are right (where hidden true masks exist, on synthetic data)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

#: (weak-view probabilities [B,C,H,W], weak images [B,C_in,H,W]) -> extra pixels bool [B,H,W].
Selector = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def confident_pixels(
    probs: torch.Tensor, threshold: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(pseudo-labels int64 [B,H,W], confidence [B,H,W], selected bool [B,H,W]) of
    probabilities [B,C,H,W]: the argmax, its probability, and confidence > threshold."""
    confidence, pseudo = probs.max(dim=1)
    return pseudo, confidence, confidence > threshold


def masked_cross_entropy(
    logits: torch.Tensor, pseudo: torch.Tensor, selected: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy summed over the selected pixels that are not padding, divided by all
    pixels that are not padding (UniMatch)."""
    per_pixel = F.cross_entropy(logits, pseudo, reduction="none")
    return (per_pixel * (selected & valid)).sum() / valid.sum().clamp(min=1)


def pseudo_label_accuracy(
    pseudo: torch.Tensor, selected: torch.Tensor, true_mask: torch.Tensor
) -> dict[str, torch.Tensor]:
    """``train/pseudo_acc``: the share of selected, labelled pixels whose pseudo-label is the
    hidden true class (absent when no such pixel); ``train/pseudo_acc_all``: over all labelled
    pixels (ignore index 255 and any label outside the classes excluded)."""
    known = (true_mask >= 0) & (true_mask < 255)
    correct = (pseudo == true_mask) & known
    logged = {"train/pseudo_acc_all": correct.sum() / known.sum().clamp(min=1)}
    chosen = known & selected
    if chosen.any():
        logged["train/pseudo_acc"] = (correct & selected).sum() / chosen.sum()
    return logged
