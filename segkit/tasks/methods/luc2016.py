"""Luc, Couprie, Chintala, Verbeek, "Semantic Segmentation using Adversarial Networks" (2016):
a discriminator scores (image, label map) pairs, real = one-hot ground truth, fake = the
segmenter's softmax; the segmenter minimises its loss plus ``adv_weight`` x the adversarial
loss."""

from __future__ import annotations

import torch

from segkit.tasks.gan_losses import generator_loss, one_hot_labels
from segkit.tasks.methods.adversarial import AdversarialMethod, AdversarialStep, AdversarialTerms

RECON_LOSSES = ("seg", "l1")


class Luc2016(AdversarialMethod):
    """On labeled images, the supervised term (the configured loss, ``recon_loss="seg"``, or
    the L1 distance between the softmax and the one-hot label, ``"l1"``; the loop weighs it by
    ``model.seg_weight``) plus ``adv_weight`` x the generator loss of the discriminator's
    logits on the softmax (from the loop's ``adv_start``). Trains on the labeled images only.
    `Pix2Pix` and `Hung2018` build on this term.

    Logs ``train/seg_loss`` and ``train/adv_loss``.

    Args:
        recon_loss: kind of the supervised term, "seg" or "l1".
        adv_weight: weight of the adversarial term on labeled images (the paper tunes it per
            dataset; 0.1 is a starting point).
        d_loss_weight: scale of the discriminator loss.
    """

    def __init__(
        self, recon_loss: str = "seg", adv_weight: float = 0.1, d_loss_weight: float = 1.0
    ) -> None:
        if recon_loss not in RECON_LOSSES:
            raise ValueError(
                f"recon_loss={recon_loss!r} is invalid: expected one of {', '.join(RECON_LOSSES)}"
            )
        self.recon_loss = recon_loss
        self.adv_weight, self.d_loss_weight = float(adv_weight), float(d_loss_weight)

    def __call__(self, step: AdversarialStep) -> AdversarialTerms:
        images, mask = step.labeled["image"], step.labeled["mask"]
        if self.recon_loss == "seg":
            recon, logits, logged = step.supervised(images, mask)
        else:
            logits = step.forward(images)
            recon, logged = l1_to_one_hot(logits, mask, step.ignore_index), {}
        probs = logits.float().softmax(1)
        adv = torch.zeros((), device=recon.device)
        if step.adversarial:
            adv = generator_loss(step.judge(probs, images), step.gan_loss)
        logged["train/seg_loss"] = recon.detach()
        logged["train/adv_loss"] = adv.detach()
        return AdversarialTerms(recon, self.adv_weight * adv, logged, [(probs.detach(), images)])


def l1_to_one_hot(logits: torch.Tensor, mask: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """pix2pix's L1 term: mean |softmax - one-hot| over the valid pixels' channels."""
    one_hot, valid = one_hot_labels(mask, logits.shape[1], ignore_index)
    diff = (logits.float().softmax(1) - one_hot).abs() * valid
    return diff.sum() / (valid.sum() * logits.shape[1]).clamp(min=1)
