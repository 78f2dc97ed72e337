"""The protocol between the adversarial loop (`segkit.tasks.adversarial.AdversarialSegmentation`)
and its methods (`luc2016`, `pix2pix`, `hung2018` in this folder).

Each training batch the loop calls the method with an `AdversarialStep` (what the loop owns:
the supervised loss, the segmenter's training forward, the discriminator's judgement, the
weak-to-strong consistency and its teacher, a per-step random generator) and the batch; the
method returns `AdversarialTerms`: the supervised term (the loop weighs it by its
``seg_weight``), the method's other terms, what to log, and the (detached softmax, image)
pairs the loop's discriminator step learns as fake. The loop makes the real maps (one-hot
ground truth) and scales the discriminator's loss by the method's ``d_loss_weight``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from segkit.tasks.consistency import WeakToStrong

#: images [B,C,H,W] -> logits [B,K,H,W]
Forward = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class AdversarialStep:
    """One training batch and what the loop lends a method for it.

    Attributes:
        labeled: the labeled batch {"image", "mask", ...}.
        unlabeled: the unlabeled batch {"image", ("strong", "padding")} when the method
            `learns_unlabeled` and the data has one, else None.
        partner: a second unlabeled batch (CutMix partners of weak-to-strong consistency).
        supervised: (images, mask) -> (the configured loss, main logits, logged terms), with
            the auxiliary head's loss when the segmenter has one.
        forward: the segmenter in training mode, images -> logits (main output).
        judge: (label map [B,K,H,W], image) -> the discriminator's logits.
        net: the segmenter (weak-to-strong consistency switches its dropout).
        adversarial: whether the adversarial terms are on (from ``adv_start``).
        iteration: segmenter steps taken so far.
        gan_loss: "bce", "lsgan" or "hinge".
        num_classes, ignore_index: the label space.
        consistency: the loop's weak-to-strong consistency for unlabeled images, or None.
        teacher: the EMA teacher's forward (with ``consistency.ema_momentum``), or None.
        generator: a random generator seeded by the step and rank (resumed runs repeat).
    """

    labeled: dict[str, Any]
    unlabeled: dict[str, Any] | None
    partner: dict[str, Any] | None
    supervised: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, dict]]
    forward: Forward
    judge: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    net: nn.Module
    adversarial: bool
    iteration: int
    gan_loss: str
    num_classes: int
    ignore_index: int
    consistency: WeakToStrong | None = None
    teacher: Forward | None = None
    generator: torch.Generator | None = None


@dataclass
class AdversarialTerms:
    """A method's terms on one batch: the supervised term on labeled images (unweighted),
    every other term of the segmenter's loss (weighted), the logged terms (detached) and the
    (detached softmax, image) pairs the discriminator learns as fake (the labeled pair
    first)."""

    supervised: torch.Tensor
    loss: torch.Tensor
    logged: dict[str, torch.Tensor] = field(default_factory=dict)
    fakes: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)


class AdversarialMethod:
    """Base of the adversarial methods: what the loop asks of one.

    Class attributes a method overrides to declare what it needs:
        learns_unlabeled: the loop passes the batch's unlabeled images (else None) and takes
            weak-to-strong consistency (``model.consistency``) for them.
        per_pixel_discriminator: the discriminator must output a map of the label map's size
            (`segkit.models.discriminators` classes say whether theirs is ``per_pixel``).

    Attributes:
        d_loss_weight: the scale of the discriminator's loss.
    """

    learns_unlabeled: ClassVar[bool] = False
    per_pixel_discriminator: ClassVar[bool] = False
    d_loss_weight: float = 1.0

    def __call__(self, step: AdversarialStep) -> AdversarialTerms:
        """The segmenter's terms on the step's batch."""
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"
