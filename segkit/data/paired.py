"""Datasets of image files paired with label-index PNGs (VOC, ADE20K and the like)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from segkit.data.transforms import WorkerSeededTransform, to_sample


def label_lut(mapping: dict[int, int]) -> np.ndarray:
    """A 256-entry table raw label value -> class index; values not in `mapping` map to -1
    (invalid: loaders refuse them, naming the file)."""
    lut = np.full(256, -1, dtype=np.int16)
    for raw, label in mapping.items():
        lut[raw] = label
    return lut


class PairedSegmentation(Dataset):
    """Images with one single-channel 8-bit label PNG each, as semantic samples.

    Args:
        images, masks: paired file lists (same length, same order).
        lut: raw PNG value -> class index (255 = ignore, -1 = invalid), see `label_lut`.
        transform: albumentations-style ``t(image=, mask=)`` on uint8 arrays, reseeded per
            loader worker (`WorkerSeededTransform`).
    """

    def __init__(
        self,
        images: Sequence[Path],
        masks: Sequence[Path],
        lut: np.ndarray,
        transform: Callable[..., dict[str, Any]] | None = None,
    ) -> None:
        if len(images) != len(masks):
            raise ValueError(f"{len(images)} images but {len(masks)} masks")
        missing = [p for pair in zip(images, masks, strict=True) for p in pair if not p.is_file()]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} listed files do not exist, first: {missing[0]}"
            )
        self.images, self.masks, self.lut = list(images), list(masks), lut
        self.transform = WorkerSeededTransform(transform) if transform is not None else None

    def __len__(self) -> int:
        return len(self.images)

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """uint8 RGB image [H,W,3] and class mask [H,W] (255 = ignore), untransformed."""
        image_path, mask_path = self.images[index], self.masks[index]
        try:
            with Image.open(image_path) as im:
                image = np.array(im.convert("RGB"))
            with Image.open(mask_path) as lb:
                if lb.mode not in ("P", "L"):
                    raise ValueError(
                        f"{mask_path}: expected a palette or grey 8-bit label PNG, got mode "
                        f"{lb.mode} (an RGB rendering of the labels cannot be decoded)"
                    )
                raw = np.asarray(lb)
        except OSError as err:
            raise OSError(f"cannot read sample {index}: {err}") from err
        if raw.shape != image.shape[:2]:
            raise ValueError(
                f"{mask_path} is {raw.shape[1]}x{raw.shape[0]} but its image {image_path} is "
                f"{image.shape[1]}x{image.shape[0]}"
            )
        mask = self.lut[raw]
        if (mask < 0).any():
            bad = sorted(set(np.unique(raw[mask < 0]).tolist()))
            raise ValueError(f"{mask_path} holds label values {bad} that are not valid here")
        return image, mask.astype(np.uint8)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image, mask = self.read(index)
        if self.transform is not None:
            out = self.transform(image=image, mask=mask)
            image, mask = out["image"], out["mask"]
        return to_sample(image, mask, self.images[index].stem)
