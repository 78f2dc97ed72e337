"""pix2pix (Isola, Zhu, Zhou, Efros, "Image-to-Image Translation with Conditional Adversarial
Networks", CVPR 2017) for label maps: a PatchGAN judges (image, label map) patches."""

from __future__ import annotations

from segkit.tasks.methods.luc2016 import Luc2016


class Pix2Pix(Luc2016):
    """`Luc2016`'s scheme with pix2pix's choices: the generator minimises the GAN loss plus
    L1 to the one-hot label (``recon_loss="seg"`` for the configured loss instead; the preset
    weighs it 100 with ``model.seg_weight``); the discriminator loss is halved. Trains on the
    labeled images only.

    Args:
        recon_loss, adv_weight, d_loss_weight: as for `Luc2016`, with pix2pix's defaults "l1",
            1 and 0.5.
    """

    def __init__(
        self, recon_loss: str = "l1", adv_weight: float = 1.0, d_loss_weight: float = 0.5
    ) -> None:
        super().__init__(recon_loss, adv_weight, d_loss_weight)
