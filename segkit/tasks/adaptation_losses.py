"""The terms of unsupervised domain adaptation for semantic segmentation, on plain tensors.

- AdaptSegNet (Tsai et al., CVPR 2018): a discriminator on the segmenter's softmax tells the
  source from the target; the segmenter learns to make target outputs look like source ones.
- ADVENT (Vu et al., CVPR 2019): the same on the weighted self-information maps
  (`self_information`), and MinEnt, the target's mean entropy (`mean_entropy`) as a loss.
- DACS (Tranheden et al., WACV 2021): ClassMix (Olsson et al. 2021) of source pixels onto target
  images (`classmix_masks`, `mix_source_into_target`), learned against source labels and target
  pseudo-labels, the target pixels weighted by the share of confident pseudo-labels
  (`dacs_pixel_weights`).
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F


def self_information(probs: torch.Tensor) -> torch.Tensor:
    """ADVENT's weighted self-information map ``-p * log(p) / log(C)``, float [B,C,H,W] of
    probabilities [B,C,H,W]; summed over classes it is the normalised entropy in [0, 1]."""
    probs = probs.float()
    return -probs * torch.log(probs.clamp(min=1e-30)) / math.log(probs.shape[1])


def pixel_entropy(probs: torch.Tensor) -> torch.Tensor:
    """Normalised entropy per pixel, float [B,H,W] in [0, 1] (1: uniform over the classes)."""
    return self_information(probs).sum(1)


def mean_entropy(probs: torch.Tensor) -> torch.Tensor:
    """MinEnt's loss: the mean normalised entropy of the predictions (scalar)."""
    return pixel_entropy(probs).mean()


def classmix_masks(
    labels: torch.Tensor, ignore_index: int = 255, generator: torch.Generator | None = None
) -> torch.Tensor:
    """ClassMix masks, bool [B,H,W]: for each source label map (int64 [B,H,W]) half its classes
    (rounded up, as in DACS), drawn uniformly from `generator` on the CPU, and the pixels of
    those classes (ignored pixels are never chosen)."""
    masks = torch.zeros(labels.shape, dtype=torch.bool, device=labels.device)
    for i, label in enumerate(labels):
        classes = torch.unique(label)
        classes = classes[classes != ignore_index]
        if classes.numel() == 0:
            continue
        chosen = torch.randperm(classes.numel(), generator=generator)[: (classes.numel() + 1) // 2]
        masks[i] = torch.isin(label, classes[chosen.to(classes.device)])
    return masks


def mix_source_into_target(
    masks: torch.Tensor, source: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    """Source values where ``masks`` (bool [B,H,W]) is set, target values elsewhere; `source`
    and `target` are [B,H,W] label maps or [B,C,H,W] images/weights of the same shape."""
    inside = masks if source.ndim == 3 else masks[:, None]
    return torch.where(inside, source, target)


def dacs_pixel_weights(confidence: torch.Tensor, threshold: float) -> torch.Tensor:
    """float [B,H,W]: DACS's weight of target pseudo-labels, the share of the batch's target
    pixels whose confidence (float [B,H,W]) exceeds `threshold`, the same at every pixel."""
    share = (confidence > threshold).float().mean()
    return torch.full_like(confidence, 1.0).mul(share)


def weighted_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor, ignore_index: int = 255
) -> torch.Tensor:
    """Mean over the pixels of ``weights * cross-entropy`` (ignored pixels count as 0),
    logits float [B,C,H,W], labels int64 [B,H,W], weights float [B,H,W]."""
    per_pixel = F.cross_entropy(logits.float(), labels, ignore_index=ignore_index, reduction="none")
    return (per_pixel * weights).mean()
