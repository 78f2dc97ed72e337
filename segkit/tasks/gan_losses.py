"""Adversarial losses on discriminator logits (any shape: per image, patch or pixel).

``kind`` selects the objective:

- ``bce``: the original GAN loss (Goodfellow et al. 2014), binary cross-entropy on logits; the
  generator uses the non-saturating form (fake labelled real);
- ``lsgan``: least squares (Mao et al. 2017): outputs regressed to 1 (real) and 0 (fake);
- ``hinge``: hinge loss (Lim & Ye 2017; Miyato et al. 2018): D minimises relu(1 - real) +
  relu(1 + fake), the generator -fake.

``real_label`` below 1 is one-sided label smoothing (Salimans et al. 2016): only the real
targets are softened (for ``hinge``, the real margin shrinks to ``real_label``).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

KINDS = ("bce", "lsgan", "hinge")


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"gan_loss={kind!r} is invalid: expected one of {', '.join(KINDS)}")


def discriminator_loss(
    real: torch.Tensor, fake: torch.Tensor, kind: str, real_label: float = 1.0
) -> torch.Tensor:
    """Loss of the discriminator given its logits on real and on (detached) fake inputs."""
    real, fake = real.float(), fake.float()
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(
            real, torch.full_like(real, real_label)
        ) + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
    if kind == "lsgan":
        return F.mse_loss(real, torch.full_like(real, real_label)) + F.mse_loss(
            fake, torch.zeros_like(fake)
        )
    if kind == "hinge":
        return F.relu(real_label - real).mean() + F.relu(1.0 + fake).mean()
    check_kind(kind)
    raise AssertionError("unreachable")


def generator_loss(fake: torch.Tensor, kind: str) -> torch.Tensor:
    """Adversarial loss of the segmenter given the discriminator's logits on its output."""
    fake = fake.float()
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
    if kind == "lsgan":
        return F.mse_loss(fake, torch.ones_like(fake))
    if kind == "hinge":
        return -fake.mean()
    check_kind(kind)
    raise AssertionError("unreachable")


def confidence(logits: torch.Tensor, kind: str) -> torch.Tensor:
    """The discriminator's belief in [0, 1] that its input is real: the sigmoid of the logits
    (``bce``, ``hinge``), or the output itself clipped to [0, 1] (``lsgan``, which regresses
    real to 1 and fake to 0). Decides ``d_real_acc``/``d_fake_acc`` (at 0.5) and Hung et al.'s
    self-training mask."""
    logits = logits.float()
    return logits.clamp(0.0, 1.0) if kind == "lsgan" else torch.sigmoid(logits)


def one_hot_labels(
    mask: torch.Tensor, num_classes: int, ignore_index: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(one-hot float [B,C,H,W] of a mask [B,H,W] with zeros at ignored pixels, valid bool
    [B,1,H,W]): the discriminator's real label maps."""
    valid = mask != ignore_index
    one_hot = F.one_hot(torch.where(valid, mask, 0), num_classes)
    return one_hot.permute(0, 3, 1, 2).float() * valid[:, None], valid[:, None]
