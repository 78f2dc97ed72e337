"""Datasets of image files paired with label images (VOC, plain folders and the like)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from segkit.data.image_reader import ImageReader
from segkit.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    WorkerSeededTransform,
    normalised,
    to_sample,
)
from segkit.data.unlabeled_views import view_entries


def label_lut(mapping: dict[int, int]) -> np.ndarray:
    """A 256-entry table raw label value -> class index; values not in `mapping` map to -1
    (invalid: loaders refuse them, naming the file)."""
    lut = np.full(256, -1, dtype=np.int16)
    for raw, label in mapping.items():
        lut[raw] = label
    return lut


class IndexMasks:
    """Decodes single-channel 8-bit label PNGs (palette or grey) through a lookup table.

    ``invalid`` words the error for values the table marks -1 (``{values}``: the values found).
    """

    def __init__(
        self, lut: np.ndarray, invalid: str = "label values {values} that are not valid here"
    ) -> None:
        self.lut, self.invalid = lut, invalid

    def __call__(self, mask: Image.Image, path: Path) -> np.ndarray:
        if mask.mode not in ("P", "L"):
            raise ValueError(
                f"{path}: expected a palette or grey 8-bit label PNG, got mode {mask.mode} "
                "(an RGB rendering of the labels needs the colour decoding)"
            )
        raw = np.asarray(mask)
        labels = self.lut[raw]
        if (labels < 0).any():
            bad = sorted(set(np.unique(raw[labels < 0]).tolist()))
            raise ValueError(f"{path} holds " + self.invalid.format(values=bad))
        return labels


class ColorMasks:
    """Decodes RGB label images: each class is one colour (``colors[c]``); pixels of
    ``ignore_color`` are ignored (255). Any other colour is refused, naming the file."""

    def __init__(
        self, colors: Sequence[Sequence[int]], ignore_color: Sequence[int] | None = None
    ) -> None:
        self.codes = {_rgb_code(c): i for i, c in enumerate(colors)}
        if len(self.codes) != len(colors):
            raise ValueError("two classes share a colour: colour masks would be ambiguous")
        if ignore_color is not None:
            self.codes[_rgb_code(ignore_color)] = 255

    def __call__(self, mask: Image.Image, path: Path) -> np.ndarray:
        rgb = np.asarray(mask.convert("RGB")).astype(np.int32)
        codes = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        present, inverse = np.unique(codes, return_inverse=True)
        unknown = [int(c) for c in present if int(c) not in self.codes]
        if unknown:
            shown = [[c >> 16, (c >> 8) & 255, c & 255] for c in unknown[:5]]
            raise ValueError(f"{path} holds colours {shown} that are not in the class colour map")
        table = np.array([self.codes[int(c)] for c in present], dtype=np.int16)
        return table[inverse.reshape(codes.shape)]


def _rgb_code(color: Sequence[int]) -> int:
    r, g, b = (int(v) for v in color)
    return (r << 16) | (g << 8) | b


def require_files(paths: Sequence[Path]) -> None:
    """Raise FileNotFoundError naming the first of `paths` that does not exist (for paths
    built from list files; paths found by listing folders exist already)."""
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} listed files do not exist, first: {missing[0]}")


def frame_pairs(
    dataset: str, image_dir: Path, label_dir: Path, expected: str
) -> tuple[list[Path], list[Path]]:
    """(images ``*.png`` of `image_dir`, label files of the same names in `label_dir`), sorted
    by name; a missing folder or label file fails here, naming it and the `expected` tree."""
    for folder in (image_dir, label_dir):
        if not folder.is_dir():
            raise FileNotFoundError(f"{dataset} folder {folder} does not exist; {expected}")
    images = sorted(image_dir.glob("*.png"))
    if not images:
        raise FileNotFoundError(f"no .png image in {image_dir}; {expected}")
    labels = [label_dir / p.name for p in images]
    missing = [p for p in labels if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} of {len(images)} {dataset} images have no label file, first: "
            f"{missing[0]}; {expected}"
        )
    return images, labels


def read_pair(
    image_path: Path,
    label_path: Path,
    decode: Callable[[Image.Image, Path], np.ndarray],
    index: int,
    reader: ImageReader | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Image [H,W,C] read by `reader` (default: RGB, `segkit.data.image_reader`) and
    ``decode(label image, label_path)`` [H,W] of sample `index`.

    Unreadable files raise OSError, labels of another size than the image ValueError, each
    naming the file.
    """
    # PIL's own messages name the file only sometimes ("image file is truncated" does not).
    image = (reader or ImageReader()).read(image_path, f" (sample {index})")
    path = label_path
    try:
        with Image.open(label_path) as lb:
            label = decode(lb, label_path)
    except OSError as err:
        raise OSError(f"cannot read {path} (sample {index}): {err}") from err
    if label.shape != image.shape[:2]:
        raise ValueError(
            f"{label_path} is {label.shape[1]}x{label.shape[0]} but its image {image_path} is "
            f"{image.shape[1]}x{image.shape[0]}"
        )
    return image, label


class PairedSegmentation(Dataset):
    """Images with one single-channel 8-bit label PNG each, as semantic samples.

    Args:
        images, masks: paired file lists (same length, same order).
        decode: turns the opened label image into class indices (255 = ignore), refusing
            invalid values with the file's name: `IndexMasks` or `ColorMasks`.
        transform: albumentations-style ``t(image=, mask=)`` on the read arrays, reseeded per
            loader worker (`WorkerSeededTransform`).
        names: sample names (default: the image file stems).
        reader: the `ImageReader` of the images (``in_channels``, EXIF, bit depth).
        mean, std: per-channel normalisation on the 0..1 scale (`channel_stats`).
    """

    def __init__(
        self,
        images: Sequence[Path],
        masks: Sequence[Path],
        decode: Callable[[Image.Image, Path], np.ndarray],
        transform: Callable[..., dict[str, Any]] | None = None,
        names: Sequence[str] | None = None,
        reader: ImageReader | None = None,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        if len(images) != len(masks):
            raise ValueError(f"{len(images)} images but {len(masks)} masks")
        self.images, self.masks, self.decode = list(images), list(masks), decode
        self.names = list(names) if names is not None else [p.stem for p in self.images]
        self.transform = WorkerSeededTransform(transform) if transform is not None else None
        self.reader, self.mean, self.std = reader or ImageReader(), list(mean), list(std)

    def __len__(self) -> int:
        return len(self.images)

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Image [H,W,C] and class mask [H,W] (255 = ignore), untransformed."""
        image, mask = read_pair(
            self.images[index], self.masks[index], self.decode, index, self.reader
        )
        return image, mask.astype(np.uint8)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image, mask = self.read(index)
        out = {"image": image, "mask": mask}
        if self.transform is not None:
            out = self.transform(image=image, mask=mask)
        sample = to_sample(out["image"], out["mask"], self.names[index], self.mean, self.std)
        # Unlabeled views (segkit.data.unlabeled_views): strong views, padding.
        sample.update(view_entries(out, lambda view: normalised(view, self.mean, self.std)))
        return sample
