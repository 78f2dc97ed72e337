"""The domain-adaptation baseline: the supervised loss on the labeled source only."""

from __future__ import annotations

from typing import ClassVar

import torch

from segkit.tasks.methods.adaptation import AdaptationMethod, AdaptationStep, AdaptationTerms


class SourceOnly(AdaptationMethod):
    """Adds nothing to the source loss; target images are not read."""

    reads_target: ClassVar[bool] = False

    def __call__(self, step: AdaptationStep) -> AdaptationTerms:
        return AdaptationTerms(step.source_logits.new_zeros((), dtype=torch.float32))
