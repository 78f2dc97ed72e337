"""Discriminators of adversarial segmentation: plain ``nn.Module``s judging label maps.

Every discriminator is called as ``disc(label_map, image)``:

- ``label_map`` float [B,C,H,W]: class probabilities (the segmenter's softmax) or a one-hot
  ground truth;
- ``image`` float [B,C_in,H,W], the normalised input image; only read when the class attribute
  ``conditional`` is true (the discriminator judges the (image, label map) pair);

and returns real/fake logits [B,1,h,w] (one score per image, patch or pixel; see each class).
The class attribute ``per_pixel`` says whether h, w are the label map's (a confidence map, as
Hung et al.'s self-training reads).
``spectral_norm=True`` wraps every convolution in spectral normalisation (Miyato et al. 2018), a
stabiliser that bounds the discriminator's Lipschitz constant.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn
from torch.nn import functional as F


def _conv(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    padding: int = 0,
    bias: bool = True,
    spectral_norm: bool = False,
) -> nn.Module:
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=bias)
    return nn.utils.parametrizations.spectral_norm(conv) if spectral_norm else conv


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm={kind!r} is invalid: expected 'batch', 'instance' or 'none'")


class PairDiscriminator(nn.Module):
    """Luc et al. 2016 ("Semantic Segmentation using Adversarial Networks"): one score per
    (image, label map) pair.

    Two branches, as in the paper's design: the label map through a 5x5 convolution to 64
    channels; the image through 5x5 convolutions to 16 then 64 channels. The concatenation goes
    through 3x3 convolutions of 128, 256 and 512 channels, the first two followed by 2x2 max
    pooling, and a 3x3 convolution to one channel, averaged over the image (widths for
    ``base_channels=64``; they scale with it). Output [B,1,1,1]. Unlike the paper, each
    branch's last convolution has stride 2: the trunk then runs at half resolution, 4x cheaper
    (at full resolution it cost 3.6x the U-Net-ResNet18 step at 64x64).
    """

    conditional = True
    per_pixel = False

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 3,
        base_channels: int = 64,
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        sn, b = spectral_norm, base_channels
        self.label_branch = nn.Sequential(
            _conv(num_classes, b, 5, 2, padding=2, spectral_norm=sn), nn.ReLU(inplace=True)
        )
        self.image_branch = nn.Sequential(
            _conv(in_channels, b // 4, 5, padding=2, spectral_norm=sn),
            nn.ReLU(inplace=True),
            _conv(b // 4, b, 5, 2, padding=2, spectral_norm=sn),
            nn.ReLU(inplace=True),
        )
        self.trunk = nn.Sequential(
            _conv(2 * b, 2 * b, 3, padding=1, spectral_norm=sn),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            _conv(2 * b, 4 * b, 3, padding=1, spectral_norm=sn),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            _conv(4 * b, 8 * b, 3, padding=1, spectral_norm=sn),
            nn.ReLU(inplace=True),
            _conv(8 * b, 1, 3, padding=1, spectral_norm=sn),
        )

    def forward(self, label_map: torch.Tensor, image: torch.Tensor | None = None) -> torch.Tensor:
        if image is None:
            raise ValueError("PairDiscriminator judges (image, label map) pairs: pass the image")
        features = torch.cat([self.label_branch(label_map), self.image_branch(image)], dim=1)
        return self.trunk(features).mean(dim=(2, 3), keepdim=True)


class ConfidenceDiscriminator(nn.Module):
    """Hung et al. 2018 ("Adversarial Learning for Semi-Supervised Semantic Segmentation"): a
    fully-convolutional discriminator giving a per-pixel confidence that the label map is real.

    Five 4x4 convolutions of stride 2 (64, 128, 256, 512 channels, then 1), leaky ReLU 0.2
    between them, the output upsampled bilinearly to the input size. It does not see the image.
    Output [B,1,H,W]: its sigmoid is the confidence map that selects pixels for self-training.
    """

    conditional = False
    per_pixel = True

    def __init__(
        self,
        num_classes: int,
        base_channels: int = 64,
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        widths = [num_classes] + [base_channels * 2**i for i in range(4)]
        layers: list[nn.Module] = []
        for c_in, c_out in itertools.pairwise(widths):
            layers += [
                _conv(c_in, c_out, 4, 2, 1, spectral_norm=spectral_norm),
                nn.LeakyReLU(0.2, inplace=True),
            ]
        layers.append(_conv(widths[-1], 1, 4, 2, 1, spectral_norm=spectral_norm))
        self.layers = nn.Sequential(*layers)

    def forward(self, label_map: torch.Tensor, image: torch.Tensor | None = None) -> torch.Tensor:
        logits = self.layers(label_map)
        return F.interpolate(
            logits, size=label_map.shape[-2:], mode="bilinear", align_corners=False
        )


class PatchDiscriminator(nn.Module):
    """pix2pix's PatchGAN (Isola et al. 2017, "Image-to-Image Translation with Conditional
    Adversarial Networks"): judges every overlapping patch of the (image, label map) pair.

    With ``num_layers=3`` (the default) each output score sees a 70x70 patch: 4x4 convolutions
    C64 (stride 2, no norm), C128, C256 (stride 2), C512 (stride 1), then one channel (stride 1),
    leaky ReLU 0.2. Output [B,1,H/8-2,W/8-2] (e.g. 30x30 for 256x256 inputs).
    """

    conditional = True
    per_pixel = False

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 3,
        base_channels: int = 64,
        num_layers: int = 3,
        norm: str = "batch",
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        _norm(norm, 1)  # validate before building
        sn = spectral_norm
        layers: list[nn.Module] = [
            _conv(num_classes + in_channels, base_channels, 4, 2, 1, spectral_norm=sn),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        width = base_channels
        for i in range(1, num_layers + 1):
            out = base_channels * min(2**i, 8)
            stride = 2 if i < num_layers else 1
            # A norm layer follows: the convolution's bias would be cancelled.
            layers += [
                _conv(width, out, 4, stride, 1, bias=norm == "none", spectral_norm=sn),
                _norm(norm, out),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            width = out
        layers.append(_conv(width, 1, 4, 1, 1, spectral_norm=sn))
        self.layers = nn.Sequential(*layers)

    def forward(self, label_map: torch.Tensor, image: torch.Tensor | None = None) -> torch.Tensor:
        if image is None:
            raise ValueError("PatchDiscriminator judges (image, label map) pairs: pass the image")
        return self.layers(torch.cat([image, label_map], dim=1))
