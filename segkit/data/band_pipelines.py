"""Augmentation pipelines fitted to the number of image bands, decided once when the data
module is built: albumentations' RGB-only photometric transforms (``ColorJitter``, ``ToGray``,
``HueSaturationValue``, ``CLAHE``, ...) raise on multi-band images, so a preset written for
photographs would stop a 4-band TIFF dataset at its first batch.

Each image-only transform of a pipeline is tried once on a small array of ``in_channels``
bands (8-bit and float, the two kinds the image reader gives). One that fails is replaced by a
band-agnostic one where there is one (``ColorJitter`` -> ``RandomBrightnessContrast`` over the
same brightness and contrast ranges, applied alike to every band) and dropped otherwise; what
changed is logged. Geometric transforms and those that take any band count are kept as they
are. Only a ``Compose``'s own list is looked at (not nested ``OneOf``s).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np


def fitted_to_bands(pipeline: Any, in_channels: int, name: str) -> Any:
    """`pipeline` (an albumentations ``Compose``, or anything else, returned as is) with its
    transforms that cannot take `in_channels` bands replaced or dropped; `name` (e.g.
    ``data.train_transform``) is named in the logged decision."""
    import albumentations as A

    if not isinstance(pipeline, A.Compose):
        return pipeline
    kept, changes = [], []
    for transform in pipeline.transforms:
        if not isinstance(transform, A.ImageOnlyTransform) or _takes(transform, in_channels):
            kept.append(transform)
        elif isinstance(transform, A.ColorJitter):
            (b_low, b_high), (c_low, c_high) = transform.brightness, transform.contrast
            replacement = A.RandomBrightnessContrast(
                brightness_limit=(b_low - 1.0, b_high - 1.0),
                contrast_limit=(c_low - 1.0, c_high - 1.0),
                p=transform.p,
            )
            kept.append(replacement)
            brightness = f"{b_low - 1:+.3g}..{b_high - 1:+.3g}"
            contrast = f"{c_low - 1:+.3g}..{c_high - 1:+.3g}"
            changes.append(
                f"ColorJitter replaced by RandomBrightnessContrast(brightness {brightness}, "
                f"contrast {contrast}, p={transform.p})"
            )
        else:
            changes.append(f"{type(transform).__name__} dropped")
    if not changes:
        return pipeline
    from lightning.pytorch.utilities import rank_zero_info

    rank_zero_info(
        f"segkit: {name} for {in_channels}-band images: {'; '.join(changes)} (they take 1 or "
        "3 bands only)"
    )
    return A.Compose(kept, p=pipeline.p)


def _takes(transform: Any, in_channels: int) -> bool:
    """Whether `transform` (forced on) runs on 8-bit and float images of `in_channels` bands."""
    trial = copy.deepcopy(transform)
    trial.p = 1.0
    rng = np.random.default_rng(0)
    for image in (
        rng.integers(0, 256, (16, 16, in_channels), dtype=np.uint8),
        rng.random((16, 16, in_channels), dtype=np.float32),
    ):
        try:
            trial(image=image)
        except Exception:  # albumentations raises several types for a wrong band count
            return False
    return True
