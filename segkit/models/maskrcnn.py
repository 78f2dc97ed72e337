"""Mask R-CNN (He et al. 2017) from torchvision, built from plain config values.

Input/output contract (torchvision's): in training, ``net(images, targets)`` takes a list of
float [3,H,W] images in [0,1] and targets ``{"boxes" [N,4] xyxy, "labels" [N] in 1..C-1,
"masks" uint8 [N,H,W]}`` and returns a dict of losses; in eval mode, ``net(images)`` returns
per image ``{"boxes" [K,4], "labels" [K], "scores" [K], "masks" float [K,1,H,W] in [0,1]}``.
The network resizes images (``min_size``/``max_size``) and normalises them itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn
from torchvision.models.detection import MaskRCNN, maskrcnn_resnet50_fpn_v2
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops.misc import FrozenBatchNorm2d

from segkit.models.weights_cache import require_torchvision_weights

BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet50_v2")


def build_maskrcnn(
    num_classes: int,
    backbone: str = "resnet50",
    trainable_backbone_layers: int = 5,
    norm: str = "batch",
    anchor_sizes: Sequence[int] = (32, 64, 128, 256, 512),
    aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
    min_size: int = 800,
    max_size: int = 1333,
    detections_per_img: int = 100,
    weights_backbone: str | None = None,
    box_batch_size_per_image: int = 512,
    rpn_proposals_train: int = 2000,
    box_head_size: int = 1024,
    mask_head_channels: int = 256,
) -> MaskRCNN:
    """A Mask R-CNN with an FPN over a ResNet backbone.

    Args:
        num_classes: classes including background (torchvision's convention: label 0).
        backbone: "resnet50" (the layout of ``maskrcnn_resnet50_fpn``, so its COCO weights
            load), "resnet50_v2" (``maskrcnn_resnet50_fpn_v2``, Li et al. 2021), or the light
            "resnet18"/"resnet34" FPNs for CPU runs and tests.
        trainable_backbone_layers: ResNet stages trained (0-5, counted from the top); the
            others are frozen. torchvision uses 3 when starting from pretrained weights.
        norm: "batch" (BatchNorm, trained: for training from scratch) or "frozen"
            (FrozenBatchNorm2d, torchvision's choice with pretrained weights, whose statistics
            must not drift on small detection batches). ``resnet50_v2`` always uses BatchNorm.
        anchor_sizes: one anchor size per FPN level (5 levels).
        aspect_ratios: anchor aspect ratios at every level (3 for ``resnet50_v2``).
        min_size, max_size: images are resized so the short side is ``min_size`` unless the
            long side would exceed ``max_size``.
        detections_per_img: most detections kept per image in eval mode.
        weights_backbone: torchvision ImageNet weights of the ResNet (e.g. "IMAGENET1K_V1"),
            read from the local torch hub cache (never downloaded). COCO-trained whole-model
            weights are a local file given as ``model.pretrained`` instead.
        box_batch_size_per_image: proposals sampled per image to train the box and mask heads.
        rpn_proposals_train: RPN proposals kept per image in training, before and after NMS.
        box_head_size, mask_head_channels: widths of the box head's two fully connected
            layers and of the mask head's four convolutions (torchvision: 1024 and 256).
            Smaller heads cut CPU training time (the light config); other values than
            torchvision's make its COCO weights load only partly.
    """
    if backbone not in BACKBONES:
        raise ValueError(f"backbone={backbone!r} is invalid: expected one of {BACKBONES}")
    if norm not in ("batch", "frozen"):
        raise ValueError(f"norm={norm!r} is invalid: expected batch or frozen")
    if len(anchor_sizes) != 5:
        raise ValueError(f"anchor_sizes needs one size per FPN level (5), got {anchor_sizes}")
    if not 0 <= trainable_backbone_layers <= 5:
        raise ValueError(f"trainable_backbone_layers={trainable_backbone_layers}: expected 0..5")
    resnet = backbone.removesuffix("_v2")
    if weights_backbone is not None:
        require_torchvision_weights(resnet, weights_backbone)
    anchors = AnchorGenerator(
        sizes=tuple((int(s),) for s in anchor_sizes),
        aspect_ratios=(tuple(float(r) for r in aspect_ratios),) * len(anchor_sizes),
    )
    sizes = {
        "min_size": min_size,
        "max_size": max_size,
        "box_detections_per_img": detections_per_img,
    }
    if backbone == "resnet50_v2":
        if len(aspect_ratios) != 3:
            raise ValueError("resnet50_v2's RPN head predicts 3 anchors per location")
        net = maskrcnn_resnet50_fpn_v2(
            weights=None,
            weights_backbone=weights_backbone,
            num_classes=num_classes,
            trainable_backbone_layers=trainable_backbone_layers,
            **sizes,
        )
        net.rpn.anchor_generator = anchors
        _freeze_below(net.backbone.body, trainable_backbone_layers)
        if (box_head_size, mask_head_channels) != (1024, 256):
            raise ValueError("resnet50_v2 keeps torchvision's heads (1024, 256)")
        return net
    body = resnet_fpn_backbone(
        backbone_name=resnet,
        weights=weights_backbone,
        norm_layer=FrozenBatchNorm2d if norm == "frozen" else nn.BatchNorm2d,
        trainable_layers=trainable_backbone_layers,
    )
    heads = {}
    if (box_head_size, mask_head_channels) != (1024, 256):
        channels = body.out_channels
        heads = {
            "box_head": TwoMLPHead(channels * 7 * 7, box_head_size),
            "box_predictor": FastRCNNPredictor(box_head_size, num_classes),
            "mask_head": MaskRCNNHeads(channels, [mask_head_channels] * 4, 1),
            "mask_predictor": MaskRCNNPredictor(
                mask_head_channels, mask_head_channels, num_classes
            ),
        }
    return MaskRCNN(
        body,
        num_classes=None if heads else num_classes,
        rpn_anchor_generator=anchors,
        **heads,
        **sizes,
    )


def _freeze_below(body: nn.Module, trainable_layers: int) -> None:
    """Freeze the ResNet stages below the top `trainable_layers` (torchvision trains them all
    when built without pretrained weights, whatever it was asked)."""
    layers = ["layer4", "layer3", "layer2", "layer1", "conv1"][:trainable_layers]
    for name, parameter in body.named_parameters():
        parameter.requires_grad_(any(name.startswith(layer) for layer in layers))
