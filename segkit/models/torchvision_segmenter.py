"""torchvision's semantic segmentation models (FCN, DeepLabV3, LR-ASPP) behind segkit's
network contract: logits at input resolution, auxiliary head only while training."""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torchvision.models.segmentation.lraspp import LRASPP

from segkit.models.weights_cache import require_torchvision_weights


class TorchvisionSegmenter(nn.Module):
    """A torchvision segmentation model as a plain segkit network.

    Input: float [B, in_channels, H, W], any H and W (torchvision upsamples to the input size).
    Output: logits float [B, num_classes, H, W] in eval mode. In training mode, when the model
    has an auxiliary head (FCN and DeepLabV3 with ``aux_loss=True``), a dict ``{"out": logits,
    "aux": aux_logits}`` with both at input resolution, for the task's auxiliary loss; the
    auxiliary head is not run at inference.

    Args:
        arch: a torchvision builder name: ``fcn_resnet50``, ``fcn_resnet101``,
            ``deeplabv3_resnet50``, ``deeplabv3_resnet101``, ``deeplabv3_mobilenet_v3_large``,
            ``lraspp_mobilenet_v3_large``.
        num_classes: output classes (background included if the dataset has one).
        in_channels: input channels; the first convolution is rebuilt when not 3 (its
            pretrained RGB filters are averaged and spread over the new channels).
        aux_loss: build the auxiliary head (FCN/DeepLabV3 only).
        weights: torchvision weights of the whole model (e.g. ``"DEFAULT"``,
            ``"COCO_WITH_VOC_LABELS_V1"``), read from the torch hub cache; the class layers are
            re-initialised when ``num_classes`` differs from the weights' 21 classes.
        weights_backbone: ImageNet weights of the backbone only (e.g. ``"IMAGENET1K_V1"``).
    """

    def __init__(
        self,
        arch: str = "fcn_resnet50",
        num_classes: int = 21,
        in_channels: int = 3,
        aux_loss: bool = True,
        weights: str | None = None,
        weights_backbone: str | None = None,
    ) -> None:
        super().__init__()
        if weights is not None and weights_backbone is not None:
            raise ValueError("give weights (whole model) or weights_backbone, not both")
        kwargs: dict = {"weights": weights, "weights_backbone": None}
        if weights is not None:
            require_torchvision_weights(arch, weights)
        else:
            kwargs["num_classes"] = num_classes
            if weights_backbone is not None:
                backbone_arch = arch.split("_", 1)[1]  # fcn_resnet50 -> resnet50
                require_torchvision_weights(backbone_arch, weights_backbone)
                kwargs["weights_backbone"] = weights_backbone
        if not arch.startswith("lraspp"):
            kwargs["aux_loss"] = aux_loss
        self.model = torchvision.models.get_model(arch, **kwargs)
        if weights is not None:
            _replace_class_layers(self.model, num_classes)
        if in_channels != 3:
            _replace_first_conv(self.model.backbone, in_channels)
        self.num_classes, self.in_channels = num_classes, in_channels

    @property
    def encoder(self) -> nn.Module:
        """The backbone, under the name smp uses (for encoder learning-rate multipliers and
        for loading encoder-only weights)."""
        return self.model.backbone

    def forward(self, images: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        size = images.shape[-2:]
        features = self.model.backbone(images)
        if isinstance(self.model, LRASPP):
            logits = self.model.classifier(features)
        else:
            logits = self.model.classifier(features["out"])
        logits = _resize(logits, size)
        aux_head = getattr(self.model, "aux_classifier", None)
        if self.training and aux_head is not None:
            return {"out": logits, "aux": _resize(aux_head(features["aux"]), size)}
        return logits


def _resize(logits: torch.Tensor, size: torch.Size) -> torch.Tensor:
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


def _replace_class_layers(model: nn.Module, num_classes: int) -> None:
    """Swap the convolutions producing class scores for freshly initialised ones."""
    for head_name in ("classifier", "aux_classifier"):
        head = getattr(model, head_name, None)
        if head is None:
            continue
        for parent, name, conv in _class_convs(head):
            if conv.out_channels != num_classes:
                setattr(
                    parent,
                    name,
                    nn.Conv2d(
                        conv.in_channels, num_classes, conv.kernel_size, bias=conv.bias is not None
                    ),
                )


def _class_convs(head: nn.Module) -> list[tuple[nn.Module, str, nn.Conv2d]]:
    """The head's output convolutions: its last Conv2d, and LR-ASPP's two classifiers."""
    if hasattr(head, "low_classifier"):
        return [
            (head, "low_classifier", head.low_classifier),
            (head, "high_classifier", head.high_classifier),
        ]
    last = None
    for parent in head.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Conv2d):
                last = (parent, name, child)
    return [last] if last is not None else []


def _replace_first_conv(backbone: nn.Module, in_channels: int) -> None:
    for parent in backbone.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Conv2d):
                new = nn.Conv2d(
                    in_channels,
                    child.out_channels,
                    child.kernel_size,
                    child.stride,
                    child.padding,
                    child.dilation,
                    child.groups,
                    child.bias is not None,
                )
                with torch.no_grad():
                    # Keeps pretrained filters meaningful: each new channel gets the mean RGB
                    # filter, scaled so the response to a constant image is unchanged.
                    mean = child.weight.mean(dim=1, keepdim=True)
                    new.weight.copy_(mean.repeat(1, in_channels, 1, 1) * 3 / in_channels)
                    if child.bias is not None:
                        new.bias.copy_(child.bias)
                setattr(parent, name, new)
                return
    raise ValueError("no convolution found in the backbone to adapt to in_channels")
