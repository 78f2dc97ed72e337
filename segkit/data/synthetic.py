"""Built-in synthetic data: procedural scenes generated on the fly (see `segkit.data.scenes`).

Needs no files, so `make train` and the tests run anywhere. Each split is its own stream of
scenes (train, val and test never share a scene), and scene ``i`` of a split depends only on
``(seed, split, i)``. ``python -m segkit.data.synthetic export ...`` writes the scenes to disk in
real dataset layouts (see `segkit.data.synthetic_export`).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from segkit.data.base import SplitsDataModule
from segkit.data.instances import instance_sample
from segkit.data.scenes import (
    CLASS_NAMES,
    PALETTE,
    Scene,
    SceneSpec,
    SceneStyle,
    render_scene,
    split_seed,
)
from segkit.data.transforms import (
    IMAGENET_GREY,
    IMAGENET_MEAN,
    IMAGENET_STD,
    WorkerSeededTransform,
    channel_stats,
)
from segkit.data.unlabeled_views import view_entries

#: Luminance weights (ITU-R BT.601) and the grey level statistics matching ImageNet's.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


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
        transform: optional albumentations-style callable applied to the uint8 image and
            class mask (``t(image=, mask=)``), or instance masks (``t(image=, masks=)``, see
            `instance_sample`).
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
        self.spec, self.seed, self.length, self.mode = spec, seed, length, mode
        self.transform = WorkerSeededTransform(transform) if transform is not None else None
        self._cache: dict[int, Scene] | None = {} if cache else None
        check_in_channels(in_channels)
        self.in_channels = in_channels
        rgb = in_channels >= 3  # mean/std name the RGB channels; others get ImageNet's grey
        means, stds = channel_stats(
            in_channels,
            [*mean, *[IMAGENET_GREY[0]] * (in_channels - 3)] if rgb else None,
            [*std, *[IMAGENET_GREY[1]] * (in_channels - 3)] if rgb else None,
        )
        self.mean = torch.tensor(means, dtype=torch.float32).view(-1, 1, 1) * 255.0
        self.std = torch.tensor(stds, dtype=torch.float32).view(-1, 1, 1) * 255.0

    def __len__(self) -> int:
        return self.length

    def sample_name(self, index: int) -> str:
        return f"synthetic_{self.seed}_{index:06d}"

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
        name = self.sample_name(index)
        if self.mode == "instance":
            return instance_sample(
                scene.image, scene.instance_masks, scene.labels, name, self.transform
            )
        out = {"image": scene.image, "mask": scene.mask}
        if self.transform is not None:
            # Copies: a transform that writes in place must not change the cached scene.
            out = self.transform(image=scene.image.copy(), mask=scene.mask.copy())
        sample = {
            "image": self._normalised(out["image"]),
            "mask": torch.from_numpy(np.ascontiguousarray(out["mask"])).long(),
            "name": name,
        }
        # Unlabeled views (segkit.data.unlabeled_views): strong views, padding.
        sample.update(view_entries(out, self._normalised))
        return sample

    def _normalised(self, image: np.ndarray) -> torch.Tensor:
        """uint8 RGB [H,W,3] -> normalised float32 [in_channels,H,W]."""
        if self.in_channels != 3:
            image = spectral_bands(image, self.in_channels)
        image_t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()
        return (image_t - self.mean) / self.std


class SyntheticDataModule(SplitsDataModule):
    """Train/val/test streams of synthetic scenes.

    Args:
        num_classes: classes including background (2..7).
        class_names, palette: one per class (default: the shapes' names and display colours).
        ignore_index: label of pixels to ignore (the scenes have none; kept for the contract).
        image_size: int or [height, width].
        train_size, val_size, test_size: scenes per split.
        batch_size: training batch size.
        val_batch_size: validation and test batch size (None: ``batch_size``).
        seed: data seed (independent of the training seed, so changing `seed` changes the
            model initialisation but not the data).
        difficulty, min_objects, max_objects: see `SceneSpec`.
        task: "semantic" or "instance" (sample contract).
        train_transform: optional albumentations-style transform for training samples.
        cache: keep rendered scenes in memory (see `SyntheticScenes`); the scenes of an epoch
            are rendered once instead of once per epoch.
        in_channels: 3 (RGB), 1 (grayscale) or more (RGB plus synthetic extra bands).
        style: the scenes' look, `segkit.data.scenes.SceneStyle` fields (hue_shift,
            brightness, blur, object_scale, ...): a domain (``data=synthetic_shift`` pairs the
            default style with a shifted one). None: the default style.
        **loading: ``num_workers``, ``pin_memory``, ``labeled_fraction``, ``labeled_seed``
            and the other loading options of `SplitsDataModule`.
    """

    has_labeled_test = True
    tasks = ("semantic", "instance")

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
        val_batch_size: int | None = None,
        seed: int = 0,
        difficulty: float = 0.5,
        min_objects: int = 2,
        max_objects: int = 6,
        task: str = "semantic",
        train_transform: Callable[..., dict[str, Any]] | None = None,
        cache: bool = True,
        in_channels: int = 3,
        style: Mapping[str, float] | None = None,
        **loading: Any,
    ) -> None:
        loading.setdefault("num_workers", 0)
        super().__init__(
            batch_size=batch_size,
            val_batch_size=val_batch_size or batch_size,
            train_transform=train_transform,
            task=task,
            **loading,
        )
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
            style=_style(style),
        )
        self.sizes = {"train": train_size, "val": val_size, "test": test_size}
        self.num_classes, self.class_names = num_classes, list(class_names)
        self.palette, self.ignore_index = palette, ignore_index
        self.seed, self.cache, self.in_channels = seed, cache, in_channels

    def build_dataset(self, split: str) -> SyntheticScenes:
        # Built once per split, so its scene cache lives as long as the module.
        return SyntheticScenes(
            self.spec,
            seed=split_seed(self.seed, split),
            length=self.sizes[split],
            mode=self.task,
            transform=self.train_transform if split == "train" else None,
            cache=self.cache,
            in_channels=self.in_channels,
        )

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.dataset("test"), self.val_batch_size, train=False)


def _style(style: Mapping[str, float] | None) -> SceneStyle:
    if not style:
        return SceneStyle()
    known = SceneStyle.__dataclass_fields__
    unknown = sorted(set(style) - set(known))
    if unknown:
        raise ValueError(
            f"data.style has unknown keys {unknown}: expected some of {', '.join(known)}"
        )
    return SceneStyle(**{k: float(v) for k, v in style.items()})


if __name__ == "__main__":
    from segkit.data.synthetic_export import main

    sys.exit(main())
