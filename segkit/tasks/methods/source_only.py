"""The domain-adaptation baseline: the supervised loss on the labeled source only."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from segkit.tasks.methods.adaptation import AdaptationMethod, AdaptationStep, AdaptationTerms


class SourceOnly(AdaptationMethod):
    """Adds nothing to the source loss; target images are not read."""

    reads_target: ClassVar[bool] = False

    def __call__(
        self,
        step: AdaptationStep,
        source: dict[str, Any],
        target: dict[str, Any],
        source_logits: torch.Tensor,
        active: bool,
    ) -> AdaptationTerms:
        return AdaptationTerms(source_logits.new_zeros((), dtype=torch.float32))
