"""The protocol between the domain-adaptation loop (`segkit.tasks.adapt.DomainAdaptation`) and
its methods (one file each in this folder, one ``model/method`` preset each).

Each training batch the loop asks the method for the source batch to learn from
(`AdaptationMethod.prepare_source`: the batch itself, or FDA's restyled copy), computes the
supervised source loss on it, then calls the method with
an `AdaptationStep` (what the loop owns: the segmenter's training forward, the discriminator,
the teacher, a per-step random generator) and adds the `AdaptationTerms` it returns. A method
with a discriminator also returns the detached (source, target) maps the loop's discriminator
step learns from (source = real, target = fake).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

#: images [B,C,H,W] -> logits [B,K,H,W]
Forward = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class TeacherSpec:
    """An EMA teacher a method asks the loop for (`segkit.tasks.teacher.EMATeacher`):
    its momentum and how its batch-norm layers normalise target images ("batch" or
    "running")."""

    momentum: float
    normalization: str = "batch"


@dataclass
class AdaptationStep:
    """One training batch and what the loop lends a method for it.

    Attributes:
        source: the labeled source batch {"image", "mask", ...}.
        target: the unlabeled target batch {"image", ("strong"), ("true_mask"), ...}.
        source_logits: the segmenter's logits (with gradient) on the source images.
        active: false before ``adapt_start`` (terms that train the segmenter are then left
            out; what the discriminator learns from is not).
        forward: the segmenter in training mode, images -> logits (main output).
        discriminator: the loop's discriminator when the method `needs_discriminator`.
        teacher: the EMA teacher's forward (no gradient) when the method asked for one.
        generator: a random generator seeded by the step and rank (`step_generator`), so
            resumed runs repeat their random choices.
        gan_loss: the loop's GAN loss kind ("bce", "lsgan", "hinge").
        ignore_index: the label of ignored pixels.
    """

    source: dict[str, Any]
    target: dict[str, Any]
    source_logits: torch.Tensor
    active: bool
    forward: Forward
    discriminator: nn.Module | None
    teacher: Forward | None
    generator: torch.Generator
    gan_loss: str
    ignore_index: int


@dataclass
class AdaptationTerms:
    """A method's contribution to the segmenter's loss on one batch.

    Attributes:
        loss: scalar added to the supervised source loss.
        logged: ``train/...`` values to log (detached).
        judged: detached (source, target) maps for the discriminator step, or None.
    """

    loss: torch.Tensor
    logged: dict[str, torch.Tensor] = field(default_factory=dict)
    judged: tuple[torch.Tensor, torch.Tensor] | None = None


class AdaptationMethod:
    """Base of the domain-adaptation methods: the source-only baseline's answers.

    Class attributes a method overrides to declare what it needs:
        needs_discriminator: the loop builds the discriminator step (the method returns
            `AdaptationTerms.judged`); config checks ask this too.
        reads_target: whether the method looks at target images at all.
    """

    needs_discriminator: ClassVar[bool] = False
    reads_target: ClassVar[bool] = True

    @property
    def teacher(self) -> TeacherSpec | None:
        """The EMA teacher the loop must keep for this method, or None."""
        return None

    def prepare_source(self, source: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
        """The source batch the supervised loss (and `AdaptationStep.source`) gets this step,
        from every step on (``adapt_start`` gates terms, not this): the batch itself unless
        the method restyles source images."""
        return source

    def __call__(self, step: AdaptationStep) -> AdaptationTerms:
        """The method's terms on the step's batch."""
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


def check_weight(name: str, value: float) -> float:
    if value < 0:
        raise ValueError(f"{name}={value} is invalid: expected >= 0")
    return float(value)
