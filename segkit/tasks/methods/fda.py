"""FDA (Yang and Soatto, "FDA: Fourier Domain Adaptation for Semantic Segmentation", CVPR 2020):
each source image takes the low-frequency amplitude spectrum of a target image (its look:
lighting, colour cast, sensor) and keeps its own phase (its content); the segmenter learns the
restyled source images against their labels, plus a robust entropy penalty on the target."""

from __future__ import annotations

import math
from typing import Any

import torch

from segkit.tasks.adaptation_losses import mean_entropy, pixel_entropy
from segkit.tasks.methods.adaptation import (
    AdaptationMethod,
    AdaptationStep,
    AdaptationTerms,
    check_weight,
)


def low_frequency_swap(source: torch.Tensor, target: torch.Tensor, beta: float) -> torch.Tensor:
    """Source images [B,C,H,W] restyled by target images [B',C,H,W] (source i takes target
    i mod B'): the amplitude of every frequency with ``|fy|, |fx| <= floor(beta * min(H, W))``
    (FDA's centred square, ``low_freq_mutate_np``) comes from the target, the phase stays the
    source's. The zero frequency is taken whole from the target, so the swap gives the same
    images on normalised inputs as on raw pixels normalised afterwards (per-channel mean/std).
    Computed in float32 (FFTs do not run in bf16); returns the source's dtype, unclipped."""
    if source.shape[1:] != target.shape[1:]:
        raise ValueError(
            f"fda restyles source images with target images of one shape: got source "
            f"{tuple(source.shape[1:])} and target {tuple(target.shape[1:])}; crop both domains "
            "to the same size (data.crop_size)"
        )
    height, width = source.shape[-2:]
    band = math.floor(beta * min(height, width))
    pairs = target[torch.arange(source.shape[0], device=target.device) % target.shape[0]]
    with torch.autocast(source.device.type, enabled=False):
        spectrum = torch.fft.rfft2(source.float())
        style = torch.fft.rfft2(pairs.float())
        rows = torch.fft.fftfreq(height, 1 / height, device=source.device).abs() <= band
        cols = torch.arange(spectrum.shape[-1], device=source.device) <= band
        low = rows[:, None] & cols[None, :]
        swapped = torch.polar(style.abs(), spectrum.angle())
        swapped[..., 0, 0] = style[..., 0, 0]
        mixed = torch.where(low, swapped, spectrum)
        restyled = torch.fft.irfft2(mixed, s=(height, width))
    return restyled.to(source.dtype)


def robust_entropy(probs: torch.Tensor, eta: float) -> torch.Tensor:
    """FDA's entropy penalty: the mean over pixels of ``(H^2 + 1e-8)^eta``, H the normalised
    entropy of the probabilities [B,C,H,W] (a Charbonnier penalty: eta > 0.5 weighs uncertain
    pixels more than confident ones)."""
    return (pixel_entropy(probs) ** 2 + 1e-8).pow(eta).mean()


class FDA(AdaptationMethod):
    """Fourier domain adaptation: the supervised loss learns `low_frequency_swap`\\ ped source
    images (every step, from the first), and from ``adapt_start`` ``entropy_weight`` x the
    `robust_entropy` of the target predictions is added (FDA's code turns it on after 50k
    of 100k iterations: ``model.adapt_start``).

    Logs ``train/target_entropy`` (every batch) and ``train/entropy_loss`` (once active).

    Args:
        beta: size of the swapped band as a share of the shorter image side (0.01 for the
            paper's single-model result; 0.05 and 0.09 for its ensemble). 0 swaps only the
            zero frequency: the per-channel mean.
        entropy_weight: weight of the target entropy term (0.005; 0 for FDA without it).
        eta: the Charbonnier exponent of the entropy penalty (2.0).
    """

    def __init__(self, beta: float = 0.01, entropy_weight: float = 0.005, eta: float = 2.0) -> None:
        if not 0.0 <= beta <= 0.5:
            raise ValueError(f"beta={beta} is invalid: expected 0..0.5 of the shorter side")
        if eta <= 0:
            raise ValueError(f"eta={eta} is invalid: expected > 0")
        self.beta = float(beta)
        self.entropy_weight = check_weight("entropy_weight", entropy_weight)
        self.eta = float(eta)

    def prepare_source(self, source: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
        return {**source, "image": low_frequency_swap(source["image"], target["image"], self.beta)}

    def __call__(self, step: AdaptationStep) -> AdaptationTerms:
        if self.entropy_weight == 0:  # restyling alone: target images need no forward pass
            return AdaptationTerms(step.source_logits.new_zeros((), dtype=torch.float32))
        probs = step.forward(step.target["image"]).float().softmax(1)
        terms = AdaptationTerms(probs.new_zeros(()))
        terms.logged["train/target_entropy"] = mean_entropy(probs.detach())
        if step.active:
            penalty = robust_entropy(probs, self.eta)
            terms.loss = self.entropy_weight * penalty
            terms.logged["train/entropy_loss"] = penalty.detach()
        return terms
