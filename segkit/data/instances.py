"""Instance samples (torchvision detection convention) and their augmentation.

Sample: ``{"image": float32 [3,H,W] in [0,1], "target": {"boxes": float32 [N,4] xyxy,
"labels": int64 [N] in 1..C (0 is background), "masks": uint8 [N,H,W]}, "name": str}``;
N may be 0. Boxes are always computed from the masks, so they stay consistent with them
through any geometric augmentation, and an instance cropped away entirely disappears
instead of leaving a degenerate box.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from segkit.data.transforms import image_tensor


def instance_target(masks: np.ndarray, labels: np.ndarray) -> dict[str, torch.Tensor]:
    """Torchvision detection target from bool masks [N,H,W] and labels [N] (N may be 0)."""
    boxes = np.zeros((len(masks), 4), dtype=np.float32)
    for i, m in enumerate(masks):
        ys, xs = np.nonzero(m)
        # xyxy with exclusive max, so a one-pixel object has a box of width and height 1.
        boxes[i] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    return {
        "boxes": torch.from_numpy(boxes),
        "labels": torch.from_numpy(labels.astype(np.int64)),
        "masks": torch.from_numpy(masks.astype(np.uint8)),
    }


def instance_collate(batch: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Keep images and targets as lists (sizes and instance counts differ)."""
    return {key: [sample[key] for sample in batch] for key in batch[0]}


def instance_sample(
    image: np.ndarray,
    masks: np.ndarray,
    labels: np.ndarray,
    name: str,
    transform: Callable[..., dict[str, Any]] | None = None,
    extra: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """The sample of a uint8 RGB image [H,W,3] with bool/0-1 instance masks [N,H,W].

    `transform` is an albumentations pipeline; it sees the masks as ``masks=`` (nearest
    interpolation). Pixels it pads (whatever ``fill_mask``) belong to no instance, and
    instances with no pixel left afterwards are dropped with their labels. `extra`: more
    per-instance arrays [N] for the target (COCO's ``iscrowd`` and ``area``), kept aligned.
    """
    masks = masks.astype(np.uint8)
    if transform is not None:
        # A leading empty mask: albumentations 2.0 cannot transform an empty mask stack.
        height, width = image.shape[:2]
        stack = np.concatenate([np.zeros((1, height, width), np.uint8), masks])
        out = transform(image=image, masks=stack)
        image, masks = out["image"], np.asarray(out["masks"])[1:] == 1
    masks = masks.astype(bool)
    kept = masks.any(axis=(1, 2))
    return {
        "image": image_tensor(image) / 255.0,
        "target": {
            **instance_target(masks[kept], np.asarray(labels)[kept]),
            **{key: torch.from_numpy(np.asarray(v)[kept]) for key, v in (extra or {}).items()},
        },
        "name": name,
    }
