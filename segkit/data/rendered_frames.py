"""Datasets released as one set of labelled frames in Cityscapes' classes, the rendered source
domains of adaptation to Cityscapes (`segkit.data.gta5`, `segkit.data.synthia`): the last
``val_size`` frames by name are held out as the validation split and the rest train (the
adaptation papers train on every frame and validate on the target)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from segkit.data.base import SplitsDataModule, check_fixed_facts
from segkit.data.cityscapes_labels import TRAIN_LABELS
from segkit.data.paired import PairedSegmentation


class RenderedFramesDataModule(SplitsDataModule):
    """Labelled frames with a fixed class list (`classes`, coloured as in Cityscapes), the last
    ``val_size`` by name held out for validation. Subclasses give `dataset_name`, `classes`,
    `frames` and `decoder`.

    Args:
        root: the dataset's folder.
        val_size: frames held out (the last by name) as the validation split.
        num_classes, ignore_index, class_names, palette, in_channels: dataset facts, checked
            against `classes`, 255 and RGB.
        crop_size: [height, width] of the training crops (checked against the network).
        **loading: batch sizes, workers, transforms, ``on_bad_sample`` and the other loading
            options of `SplitsDataModule`.
    """

    dataset_name: ClassVar[str]
    classes: ClassVar[tuple[str, ...]]

    def __init__(
        self,
        root: str,
        val_size: int = 500,
        num_classes: int | None = None,
        ignore_index: int = 255,
        class_names: Sequence[str] | None = None,
        palette: Sequence[Sequence[int]] | None = None,
        in_channels: int = 3,
        crop_size: Sequence[int] = (512, 512),
        **loading: Any,
    ) -> None:
        super().__init__(**loading)
        name, classes = self.dataset_name, list(self.classes)
        given = len(classes) if num_classes is None else num_classes  # None: the dataset's
        check_fixed_facts(name, len(classes), given, ignore_index, in_channels)
        if class_names is not None and list(class_names) != classes:
            raise ValueError(f"data.class_names must be {name}'s classes in order: {classes}")
        if val_size < 1:
            raise ValueError(f"val_size={val_size} is invalid: expected at least 1 frame")
        self.root, self.val_size = Path(root), val_size
        self.num_classes, self.ignore_index, self.class_names = len(classes), 255, classes
        colors = {label.name: list(label.color) for label in TRAIN_LABELS}
        self.palette = [colors[c] for c in classes] if palette is None else palette
        self.in_channels, self.crop_size = 3, list(crop_size)

    def frames(self) -> tuple[list[Path], list[Path]]:
        """(images, label files) of ``root``, sorted by name (`frame_pairs`)."""
        raise NotImplementedError

    def decoder(self) -> Callable[[Image.Image, Path], np.ndarray]:
        """The label decoder of `PairedSegmentation` (class indices, 255 = ignore)."""
        raise NotImplementedError

    def build_dataset(self, split: str) -> Dataset:
        name = self.dataset_name
        if split not in ("train", "val"):
            raise ValueError(f"{name} has train and val splits here, not {split!r}")
        images, labels = self.frames()
        if len(images) <= self.val_size:
            raise ValueError(
                f"{self.root} holds {len(images)} {name} frames: too few to hold out "
                f"data.val_size={self.val_size} for validation and train on the rest"
            )
        cut = len(images) - self.val_size
        chosen = slice(0, cut) if split == "train" else slice(cut, None)
        return PairedSegmentation(
            images[chosen],
            labels[chosen],
            self.decoder(),
            self.transform(split),
            reader=self.image_reader(3),
        )
