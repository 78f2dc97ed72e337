"""ADVENT (Vu et al., "ADVENT: Adversarial Entropy Minimization for Domain Adaptation in
Semantic Segmentation", CVPR 2019): AdaptSegNet's scheme on self-information maps."""

from __future__ import annotations

import torch

from segkit.tasks.adaptation_losses import self_information
from segkit.tasks.methods.adaptsegnet import AdaptSegNet


class ADVENT(AdaptSegNet):
    """`AdaptSegNet` whose discriminator judges weighted self-information maps
    ``-p log p / log K`` instead of the softmax: the segmenter learns low-entropy target
    outputs shaped like the source's.

    Args:
        adv_weight: weight of the adversarial term (0.001 in the paper).
    """

    def judged_map(self, probs: torch.Tensor) -> torch.Tensor:
        return self_information(probs)
