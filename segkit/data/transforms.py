"""Augmentation glue: albumentations pipelines built from YAML, seeded per loader worker."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

#: ImageNet statistics: what pretrained encoders expect.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: ImageNet's grey statistics (mean and std of its RGB means): single and extra channels.
IMAGENET_GREY = (0.449, 0.226)


class WorkerSeededTransform:
    """Wraps an albumentations ``Compose`` so its random state follows torch's worker seeds.

    albumentations 2.x keeps its own random state and ignores global seeds, so every loader
    worker would otherwise draw the same augmentations. Here the pipeline is reseeded from
    ``torch.initial_seed()`` whenever it first runs in a new worker (or in the main process):
    workers differ from each other and from epoch to epoch, and a fixed training seed
    (``seed_everything``) gives the same batches on every run. DDP ranks, which share the
    training seed (for equal model init), get different augmentation streams: the rank is
    folded into the seed (rank 0 keeps the single-process stream).
    """

    def __init__(self, transform: Callable[..., dict[str, Any]]) -> None:
        self.transform = transform
        self._seeded_for: tuple[int, int] | None = None

    def __call__(self, **data: Any) -> dict[str, Any]:
        info = torch.utils.data.get_worker_info()
        key = (info.id, info.seed) if info is not None else (-1, torch.initial_seed())
        if key != self._seeded_for and hasattr(self.transform, "set_random_seed"):
            self.transform.set_random_seed(augmentation_seed(key[1], _distributed_rank()))
            self._seeded_for = key
        return self.transform(**data)


class ImageOnly:
    """An albumentations pipeline applied to the image alone: the mask (and any other entry)
    passes unchanged. A validation pipeline that downscales images with it keeps the labels
    at full resolution, where predictions are scored (`segkit.inference.at_label_size`).

    Args:
        transforms: albumentations transforms, composed in order (as ``Compose``'s, so a
            data config's ``transforms`` list replaces the default pipeline's on override).
    """

    def __init__(self, transforms: Sequence[Callable[..., dict[str, Any]]]) -> None:
        import albumentations as A

        self.transform = A.Compose(list(transforms))

    def set_random_seed(self, seed: int) -> None:
        self.transform.set_random_seed(seed)

    def __call__(self, **data: Any) -> dict[str, Any]:
        return {**data, "image": self.transform(image=data["image"])["image"]}


def augmentation_seed(base_seed: int, rank: int) -> int:
    """The albumentations seed of a loader (worker) with torch seed `base_seed` on `rank`."""
    return (base_seed + rank * 0x9E3779B9) % 2**32  # golden-ratio stride: ranks far apart


def _distributed_rank() -> int:
    # Forked loader workers inherit the initialised process group of their rank.
    dist = torch.distributed
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def channel_stats(
    in_channels: int, mean: Sequence[float] | None = None, std: Sequence[float] | None = None
) -> tuple[list[float], list[float]]:
    """Per-channel (mean, std) on the 0..1 scale: the given ones (one per channel), else
    ImageNet's (what pretrained encoders expect): its RGB statistics for the first three
    channels of 3+ channel data, its grey statistics (0.449, 0.226) for one channel and for
    channels past the third. Set ``data.mean`` / ``data.std`` to your data's statistics."""
    rgb = in_channels >= 3
    chosen = []
    for key, given, imagenet, grey in (
        ("mean", mean, IMAGENET_MEAN, IMAGENET_GREY[0]),
        ("std", std, IMAGENET_STD, IMAGENET_GREY[1]),
    ):
        fallback = (list(imagenet) if rgb else []) + [grey] * (in_channels - 3 if rgb else 1)
        values = list(given) if given is not None else fallback
        if len(values) != in_channels:
            raise ValueError(
                f"data.{key} has {len(values)} values but data.in_channels={in_channels}: "
                "expected one per channel"
            )
        chosen.append([float(v) for v in values])
    if any(v <= 0 for v in chosen[1]):
        raise ValueError(f"data.std={chosen[1]} is invalid: expected positive values")
    return chosen[0], chosen[1]


def image_tensor(image: np.ndarray) -> torch.Tensor:
    """float32 [C,H,W] on the 0..255 scale of a read image [H,W,C] (or [H,W]): uint8 as is,
    float [0, 1] (deep data, `segkit.data.image_reader`) times 255."""
    tensor = torch.from_numpy(np.ascontiguousarray(image))
    if tensor.ndim == 2:
        tensor = tensor[..., None]
    tensor = tensor.permute(2, 0, 1).float()
    return tensor if image.dtype == np.uint8 else tensor * 255.0


def to_sample(
    image: np.ndarray,
    mask: np.ndarray,
    name: str,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> dict[str, Any]:
    """Image [H,W,C] (uint8, or float32 in [0, 1]) and int mask [H,W] -> the semantic sample
    contract (float32 [C,H,W] normalised by the per-channel `mean` and `std` of the 0..1
    scale, int64 [H,W])."""
    return {
        "image": normalised(image, mean, std),
        "mask": torch.from_numpy(np.ascontiguousarray(mask)).long(),
        "name": name,
    }


def normalised(image: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """float32 [C,H,W] of a read image [H,W,C], normalised by the 0..1 scale `mean`/`std`."""
    scale = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1) * 255.0
    shift = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1) * 255.0
    return (image_tensor(image) - shift) / scale
