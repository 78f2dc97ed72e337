"""The layout most users have: an ``images/`` folder and a ``masks/`` folder, matched by name.

    <root>/images/[train|val/]<name>.{jpg,jpeg,png,tif,tiff,bmp,webp}
    <root>/masks/[train|val/]<name>.png

Masks are index PNGs (class per pixel), RGB PNGs (one colour per class: ``palette``), or
binary 0/255 PNGs (foreground segmentation). The train/val split comes from ``train/`` and
``val/`` subfolders, from ``train.txt``/``val.txt`` lists of names in ``root``, or from a
seeded random fraction of the images (``split: auto`` picks the first that exists).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from segkit.data.band_pipelines import fitted_to_bands
from segkit.data.base import SplitsDataModule
from segkit.data.mask_survey import binary_trap, class_pixels, empty_classes
from segkit.data.paired import ColorMasks, IndexMasks, PairedSegmentation, label_lut
from segkit.data.transforms import channel_stats

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")
MASK_FORMATS = ("index", "rgb", "binary")
SPLIT_MODES = ("auto", "subfolders", "lists", "fraction")


def pair_by_name(image_dir: Path, mask_dir: Path) -> dict[str, tuple[Path, Path]]:
    """{name: (image, mask)} for the files of two folders, matched by file stem.

    Raises FileNotFoundError naming the first unmatched files on either side.
    """
    for folder in (image_dir, mask_dir):
        if not folder.is_dir():
            raise FileNotFoundError(
                f"folder {folder} does not exist; expected <root>/images/ and <root>/masks/ "
                "(optionally with train/ and val/ subfolders)"
            )
    images = {p.stem: p for p in sorted(image_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
    masks = {p.stem: p for p in sorted(mask_dir.glob("*.png"))}
    if not images:
        raise FileNotFoundError(f"no image ({', '.join(IMAGE_SUFFIXES)}) in {image_dir}")
    for side, names, other in (("image", images, masks), ("mask", masks, images)):
        lonely = sorted(set(names) - set(other))
        if lonely:
            missing_side = "mask" if side == "image" else "image"
            raise FileNotFoundError(
                f"{len(lonely)} {side}s have no {missing_side} of the same name, first: "
                f"{names[lonely[0]]}"
            )
    return {name: (images[name], masks[name]) for name in images}


class FolderDataModule(SplitsDataModule):
    """Semantic data from ``images/`` + ``masks/`` folders.

    Args:
        root: the folder holding ``images/`` and ``masks/``.
        mask_format: "index" (values 0..num_classes-1, 255 ignored), "rgb"
            (class c has colour ``palette[c]``; ``ignore_color`` is ignored) or "binary"
            (0 background, 255 or 1 foreground; ``num_classes`` must be 2).
        split: "auto", "subfolders", "lists" or "fraction" (see the module docstring).
        val_fraction, split_seed: the seeded split of "fraction" mode.
        num_classes, ignore_index, class_names, palette, in_channels: dataset facts.
        ignore_color: RGB colour of ignored pixels in "rgb" masks (e.g. [255, 255, 255]).
        crop_size: [height, width] of training crops (checked against the network).
        mean, std: per-channel normalisation on the 0..1 scale (null: ImageNet's, its grey
            statistics for 1 channel and past the third; `segkit.data.transforms.channel_stats`).
        The training and strong pipelines are fitted to ``in_channels``: photometric
        transforms that take 1 or 3 bands only are replaced by band-agnostic ones or dropped
        (`segkit.data.band_pipelines`).
        **loading: batch sizes, workers, transforms, ``on_bad_sample``, ``labeled_fraction``
            and the other loading options of `SplitsDataModule`.
    """

    def __init__(
        self,
        root: str,
        num_classes: int,
        class_names: Sequence[str],
        palette: Sequence[Sequence[int]],
        mask_format: str = "index",
        split: str = "auto",
        val_fraction: float = 0.2,
        split_seed: int = 0,
        ignore_index: int = 255,
        ignore_color: Sequence[int] | None = None,
        in_channels: int = 3,
        crop_size: Sequence[int] = (512, 512),
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        **loading: Any,
    ) -> None:
        super().__init__(**loading)
        # The preset's photometric transforms are written for photographs: fitted once to
        # the band count (RGB-only ones replaced or dropped, the decision logged).
        self.train_transform = fitted_to_bands(
            self.train_transform, in_channels, "data.train_transform"
        )
        self.strong_transform = fitted_to_bands(
            self.strong_transform, in_channels, "data.strong_transform"
        )
        if mask_format not in MASK_FORMATS:
            raise ValueError(
                f"mask_format={mask_format!r} is invalid: expected one of {MASK_FORMATS}"
            )
        if split not in SPLIT_MODES:
            raise ValueError(f"split={split!r} is invalid: expected one of {SPLIT_MODES}")
        if mask_format == "binary" and num_classes != 2:
            raise ValueError(f"binary masks have 2 classes, not num_classes={num_classes}")
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction={val_fraction} is invalid: expected 0 < f < 1")
        if ignore_index != 255:
            raise ValueError(
                f"ignore_index={ignore_index}: segkit samples mark ignored pixels with 255 (in "
                "index masks, 255 is ignored; in rgb masks, ignore_color)"
            )
        self.in_channels = in_channels
        self.mean, self.std = channel_stats(in_channels, mean, std)
        self.root, self.mask_format, self.split = Path(root), mask_format, split
        self.val_fraction, self.split_seed = val_fraction, split_seed
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.class_names, self.palette = list(class_names), [list(c) for c in palette]
        self.ignore_color, self.crop_size = ignore_color, list(crop_size)

    def split_mode(self) -> str:
        """The split source in use ("auto" resolved)."""
        if self.split != "auto":
            return self.split
        if (self.root / "images" / "train").is_dir():
            return "subfolders"
        if (self.root / "train.txt").is_file():
            return "lists"
        return "fraction"

    def split_pairs(self, split: str) -> list[tuple[Path, Path]]:
        """The (image, mask) pairs of `split` ("train" or "val")."""
        if split not in ("train", "val"):
            raise ValueError(f"folder data has train and val splits, not {split!r}")
        mode = self.split_mode()
        if mode == "subfolders":
            pairs = pair_by_name(self.root / "images" / split, self.root / "masks" / split)
            return [pairs[n] for n in sorted(pairs)]
        pairs = pair_by_name(self.root / "images", self.root / "masks")
        if mode == "lists":
            list_file = self.root / f"{split}.txt"
            if not list_file.is_file():
                raise FileNotFoundError(f"split list {list_file} does not exist")
            names = [Path(line.strip()).stem for line in list_file.read_text().splitlines()]
            unknown = [n for n in names if n and n not in pairs]
            if unknown:
                raise FileNotFoundError(
                    f"{list_file} lists {len(unknown)} names with no image/mask pair, "
                    f"first: {unknown[0]}"
                )
            return [pairs[n] for n in names if n]
        names = sorted(pairs)
        random.Random(self.split_seed).shuffle(names)
        num_val = max(1, round(len(names) * self.val_fraction))
        if num_val >= len(names):
            raise ValueError(f"{len(names)} images are too few to split off a validation set")
        chosen = names[:num_val] if split == "val" else names[num_val:]
        return [pairs[n] for n in sorted(chosen)]

    def survey_training_masks(self) -> list[str]:
        """Read every training mask once (not the images), before training: ValueError for
        black-and-white 0/255 masks read as class indices (`segkit.data.mask_survey`) and for
        any mask `decoder` refuses, naming the file; returns the names of the classes no
        training pixel belongs to (to warn about)."""
        dataset = self.dataset("train").dataset
        masks = (self._decoded_mask(dataset, i) for i in range(len(dataset)))
        counts, ignored = class_pixels(masks, self.num_classes, self.ignore_index)
        trap = binary_trap(counts, ignored, self.mask_format)
        if trap:
            raise ValueError(f"{self.root}: {trap}")
        return empty_classes(counts, self.class_names)

    @staticmethod
    def _decoded_mask(dataset: PairedSegmentation, index: int):
        from PIL import Image

        path = dataset.masks[index]
        with Image.open(path) as mask:
            return dataset.decode(mask, path)

    def decoder(self) -> Callable:
        if self.mask_format == "rgb":
            return ColorMasks(self.palette, self.ignore_color)
        if self.mask_format == "binary":
            return IndexMasks(label_lut({0: 0, 1: 1, 255: 1}))
        return IndexMasks(label_lut({**{c: c for c in range(self.num_classes)}, 255: 255}))

    def build_dataset(self, split: str) -> PairedSegmentation:
        pairs = self.split_pairs(split)
        return PairedSegmentation(
            [i for i, _ in pairs],
            [m for _, m in pairs],
            self.decoder(),
            self.transform(split),
            reader=self.image_reader(self.in_channels),
            mean=self.mean,
            std=self.std,
        )
