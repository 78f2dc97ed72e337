"""Built-in synthetic data: procedural scenes generated on the fly (see `segkit.data.scenes`).

Needs no files, so `make train` and the tests run anywhere. Each split is its own stream of
scenes (train, val and test never share a scene), and scene ``i`` of a split depends only on
``(seed, split, i)``. ``python -m segkit.data.synthetic export ...`` writes the scenes to disk in
real dataset layouts (see `segkit.data.synthetic_export`).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from segkit.data.scenes import CLASS_NAMES, PALETTE, Scene, SceneSpec, render_scene, split_seed

#: ImageNet statistics: what pretrained encoders expect.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Luminance weights (ITU-R BT.601) and the grey level statistics matching ImageNet's.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_GREY_MEAN, _GREY_STD = 0.449, 0.226


def spectral_bands(image: np.ndarray, in_channels: int) -> np.ndarray:
    """uint8 RGB [H,W,3] -> float32 [H,W,in_channels] on the 0..255 scale.

    1 channel: luminance (grayscale sensors). 3: RGB unchanged. More: RGB followed by
    ``in_channels - 3`` extra bands, each a fixed positive mix of R, G and B (a stand-in for
    multispectral sensors, so such pipelines can be exercised without data).
    """
    check_in_channels(in_channels)
    rgb = image.astype(np.float32)
    if in_channels == 1:
        return rgb @ _LUMA[:, None]
    return np.concatenate([rgb, rgb @ _band_mixes(in_channels - 3)], axis=2)


def check_in_channels(in_channels: int) -> None:
    if in_channels != 1 and in_channels < 3:
        raise ValueError(f"in_channels={in_channels} is invalid: expected 1 or at least 3")


@functools.cache
def _band_mixes(extra_bands: int) -> np.ndarray:
    """Fixed [3, extra_bands] mixing weights (drawn once per band count, not per sample)."""
    mixes = np.random.default_rng(1234).dirichlet(np.ones(3), size=extra_bands)
    return mixes.T.astype(np.float32)


class SyntheticScenes(Dataset):
    """Synthetic scenes as segkit samples.

    mode="semantic": ``{"image": float32 [in_channels,H,W] normalised, "mask": int64 [H,W],
    "name": str}``.
    mode="instance": ``{"image": float32 [3,H,W] in [0,1], "target": {"boxes": float32 [N,4]
    xyxy, "labels": int64 [N] in 1..C, "masks": uint8 [N,H,W]}, "name": str}``.

    Args:
        spec: what the scenes look like.
        seed: stream seed (use `split_seed`).
        length: number of scenes.
        mode: "semantic" or "instance".
        transform: optional albumentations-style callable ``t(image=, mask=) -> dict``, applied
            to the uint8 image and class mask (semantic mode only).
        mean, std: normalisation of the RGB channels in semantic mode (grey and extra bands
            use ImageNet's grey level statistics).
        in_channels: image channels in semantic mode (see `spectral_bands`).
        cache: keep each rendered scene in memory (uint8: about 4 bytes per pixel plus the
            instance masks), so later epochs skip rendering. Transforms still run every time.
            With loader workers, each worker caches the scenes it renders.
    """

    def __init__(
        self,
        spec: SceneSpec,
        seed: int,
        length: int,
        mode: str = "semantic",
        transform: Callable[..., dict[str, Any]] | None = None,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        cache: bool = False,
        in_channels: int = 3,
    ) -> None:
        if mode not in ("semantic", "instance"):
            raise ValueError(f"mode={mode!r} is invalid: expected 'semantic' or 'instance'")
        if mode == "instance" and transform is not None:
            raise ValueError("transforms are supported in semantic mode only")
        self.spec, self.seed, self.length, self.mode = spec, seed, length, mode
        self.transform = transform
        self._cache: dict[int, Scene] | None = {} if cache else None
        check_in_channels(in_channels)
        self.in_channels = in_channels
        rgb = in_channels >= 3
        means = (list(mean) if rgb else []) + [_GREY_MEAN] * (in_channels - 3 if rgb else 1)
        stds = (list(std) if rgb else []) + [_GREY_STD] * (in_channels - 3 if rgb else 1)
        self.mean = torch.tensor(means, dtype=torch.float32).view(-1, 1, 1) * 255.0
        self.std = torch.tensor(stds, dtype=torch.float32).view(-1, 1, 1) * 255.0

    def __len__(self) -> int:
        return self.length

    def _scene(self, index: int) -> Scene:
        if self._cache is None:
            return render_scene(self.spec, self.seed, index)
        if index not in self._cache:
            self._cache[index] = render_scene(self.spec, self.seed, index)
        return self._cache[index]

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} scenes")
        scene = self._scene(index)
        name = f"synthetic_{self.seed}_{index:06d}"
        if self.mode == "instance":
            return {
                "image": torch.from_numpy(scene.image).permute(2, 0, 1).float() / 255.0,
                "target": instance_target(scene.instance_masks, scene.labels),
                "name": name,
            }
        image, mask = scene.image, scene.mask
        if self.transform is not None:
            # Copies: a transform that writes in place must not change the cached scene.
            out = self.transform(image=image.copy(), mask=mask.copy())
            image, mask = out["image"], out["mask"]
        if self.in_channels != 3:
            image = spectral_bands(image, self.in_channels)
        image_t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()
        return {
            "image": (image_t - self.mean) / self.std,
            "mask": torch.from_numpy(np.ascontiguousarray(mask)).long(),
            "name": name,
        }


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


class SyntheticDataModule(L.LightningDataModule):
    """Train/val/test streams of synthetic scenes.

    Args:
        num_classes: classes including background (2..7).
        class_names, palette: one per class (default: the shapes' names and display colours).
        ignore_index: label of pixels to ignore (the scenes have none; kept for the contract).
        image_size: int or [height, width].
        train_size, val_size, test_size: scenes per split.
        batch_size, num_workers: loader settings.
        seed: data seed (independent of the training seed, so changing `seed` changes the
            model initialisation but not the data).
        difficulty, min_objects, max_objects: see `SceneSpec`.
        task: "semantic" or "instance" (sample contract).
        train_transform: optional albumentations-style transform for training samples.
        cache: keep rendered scenes in memory (see `SyntheticScenes`); the scenes of an epoch
            are rendered once instead of once per epoch.
        in_channels: 3 (RGB), 1 (grayscale) or more (RGB plus synthetic extra bands).
    """

    def __init__(
        self,
        num_classes: int = 5,
        class_names: Sequence[str] | None = None,
        palette: Sequence[Sequence[int]] | None = None,
        ignore_index: int = 255,
        image_size: int | Sequence[int] = 128,
        train_size: int = 2000,
        val_size: int = 200,
        test_size: int = 200,
        batch_size: int = 16,
        num_workers: int = 0,
        seed: int = 0,
        difficulty: float = 0.5,
        min_objects: int = 2,
        max_objects: int = 6,
        task: str = "semantic",
        train_transform: Callable[..., dict[str, Any]] | None = None,
        cache: bool = True,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        class_names = CLASS_NAMES[:num_classes] if class_names is None else class_names
        palette = PALETTE[:num_classes] if palette is None else palette
        if len(class_names) != num_classes:
            raise ValueError(
                f"data.class_names has {len(class_names)} names but data.num_classes="
                f"{num_classes}: expected one name per class"
            )
        height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
        self.spec = SceneSpec(
            height=height,
            width=width,
            num_classes=num_classes,
            min_objects=min_objects,
            max_objects=max_objects,
            difficulty=difficulty,
        )
        self.sizes = {"train": train_size, "val": val_size, "test": test_size}
        self.num_classes, self.class_names = num_classes, list(class_names)
        self.palette, self.ignore_index = palette, ignore_index
        self.batch_size, self.num_workers = batch_size, num_workers
        self.seed, self.task, self.train_transform = seed, task, train_transform
        self.cache, self.in_channels = cache, in_channels
        self._datasets: dict[str, SyntheticScenes] = {}

    def dataset(self, split: str) -> SyntheticScenes:
        """The split's dataset; built once, so its scene cache lives as long as the module."""
        if split not in self._datasets:
            self._datasets[split] = SyntheticScenes(
                self.spec,
                seed=split_seed(self.seed, split),
                length=self.sizes[split],
                mode=self.task,
                transform=self.train_transform if split == "train" else None,
                cache=self.cache,
                in_channels=self.in_channels,
            )
        return self._datasets[split]

    def _loader(self, split: str) -> DataLoader:
        return DataLoader(
            self.dataset(split),
            batch_size=self.batch_size,
            shuffle=split == "train",
            drop_last=split == "train" and self.sizes["train"] >= self.batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            collate_fn=instance_collate if self.task == "instance" else None,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")


if __name__ == "__main__":
    from segkit.data.synthetic_export import main

    sys.exit(main())
