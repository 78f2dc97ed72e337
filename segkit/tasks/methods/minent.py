"""MinEnt (Vu et al., "ADVENT: Adversarial Entropy Minimization for Domain Adaptation in
Semantic Segmentation", CVPR 2019): minimise the entropy of the target predictions."""

from __future__ import annotations

from segkit.tasks.adaptation_losses import mean_entropy
from segkit.tasks.methods.adaptation import (
    AdaptationMethod,
    AdaptationStep,
    AdaptationTerms,
    check_weight,
)


class MinEnt(AdaptationMethod):
    """``entropy_weight`` x the mean normalised entropy of the segmenter's target softmax.

    Logs ``train/target_entropy`` (every batch) and ``train/entropy_loss`` (once active).

    Args:
        entropy_weight: weight of the entropy term (0.001 in the paper).
    """

    def __init__(self, entropy_weight: float = 0.001) -> None:
        self.entropy_weight = check_weight("entropy_weight", entropy_weight)

    def __call__(self, step: AdaptationStep) -> AdaptationTerms:
        probs = step.forward(step.target["image"]).float().softmax(1)
        terms = AdaptationTerms(probs.new_zeros(()))
        terms.logged["train/target_entropy"] = mean_entropy(probs.detach())
        if step.active:
            entropy = mean_entropy(probs)
            terms.loss = self.entropy_weight * entropy
            terms.logged["train/entropy_loss"] = entropy.detach()
        return terms
