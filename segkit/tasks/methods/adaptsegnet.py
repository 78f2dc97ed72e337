"""AdaptSegNet (Tsai et al., "Learning to Adapt Structured Output Space for Semantic
Segmentation", CVPR 2018), single level: a discriminator tells source softmax outputs from
target ones; the segmenter learns target outputs the discriminator takes for source."""

from __future__ import annotations

from typing import ClassVar

import torch

from segkit.tasks.adaptation_losses import mean_entropy
from segkit.tasks.gan_losses import generator_loss
from segkit.tasks.methods.adaptation import (
    AdaptationMethod,
    AdaptationStep,
    AdaptationTerms,
    check_weight,
)


class AdaptSegNet(AdaptationMethod):
    """``adv_weight`` x the generator loss of the discriminator's logits on the target's
    `judged_map`, labelled as source. The loop's discriminator learns source maps = real,
    target maps = fake.

    Logs ``train/target_entropy`` and ``train/adv_loss`` (0 before ``adapt_start``).

    Args:
        adv_weight: weight of the adversarial term (0.001 in the paper).
    """

    needs_discriminator: ClassVar[bool] = True

    def __init__(self, adv_weight: float = 0.001) -> None:
        self.adv_weight = check_weight("adv_weight", adv_weight)

    def judged_map(self, probs: torch.Tensor) -> torch.Tensor:
        """What the discriminator sees of a softmax [B,K,H,W]: the softmax itself."""
        return probs

    def __call__(self, step: AdaptationStep) -> AdaptationTerms:
        target_probs = step.forward(step.target["image"]).float().softmax(1)
        source_map = self.judged_map(step.source_logits.float().softmax(1))
        target_map = self.judged_map(target_probs)
        adv = target_probs.new_zeros(())
        if step.active:
            adv = generator_loss(step.discriminator(target_map), step.gan_loss)
        return AdaptationTerms(
            self.adv_weight * adv,
            {
                "train/target_entropy": mean_entropy(target_probs.detach()),
                "train/adv_loss": adv.detach(),
            },
            (source_map.detach(), target_map.detach()),
        )
