"""Cityscapes (Cordts et al. 2016) from its official layout, as semantic samples.

    <root>/leftImg8bit/{train,val,test}/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    <root>/gtFine/{train,val,test}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png

labelIds are mapped to the 19 trainIds of the official table (`cityscapes_labels`); every
other labelId becomes the ignore index 255. The test split's public labels are placeholders:
it is for prediction only, so the data module has no labelled test split.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from segkit.data.base import SplitsDataModule
from segkit.data.cityscapes_labels import TRAIN_LABELS, label_id_to_train_id
from segkit.data.paired import IndexMasks, PairedSegmentation

_EXPECTED_TREE = (
    "expected the official layout: <root>/leftImg8bit/<split>/<city>/*_leftImg8bit.png and "
    "<root>/<annotation>/<split>/<city>/*_<annotation>_labelIds.png"
)


class CityscapesSegmentation(PairedSegmentation):
    """One Cityscapes split as samples ``{"image", "mask" (trainIds, 255 ignore), "name"}``.

    Pairing is checked when the dataset is built (every image needs its label file); sizes
    and label values when a sample is read, each error naming the file.

    Args:
        root: the folder holding ``leftImg8bit/`` and the annotation folder.
        split: "train", "val" (or "train_extra" with ``annotation="gtCoarse"``).
        annotation: "gtFine" or "gtCoarse".
        transform: albumentations-style callable ``t(image=, mask=) -> dict`` on uint8 arrays
            (reseeded per loader worker, see `WorkerSeededTransform`).
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        annotation: str = "gtFine",
        transform: Callable[..., dict[str, Any]] | None = None,
    ) -> None:
        self.root, self.split, self.annotation = Path(root), split, annotation
        image_dir = self.root / "leftImg8bit" / split
        if not image_dir.is_dir():
            raise FileNotFoundError(
                f"Cityscapes split folder {image_dir} does not exist; {_EXPECTED_TREE}"
            )
        images = sorted(image_dir.glob("*/*_leftImg8bit.png"))
        if not images:
            raise FileNotFoundError(
                f"no *_leftImg8bit.png image under {image_dir}; {_EXPECTED_TREE}"
            )
        labels = [self._label_path(p) for p in images]
        missing = [p for p in labels if not p.is_file()]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} of {len(images)} {split} images have no label file, "
                f"first: {missing[0]}; {_EXPECTED_TREE}"
            )
        decode = IndexMasks(
            label_id_to_train_id(), invalid="values {values} that are not Cityscapes labelIds"
        )
        names = [p.name.removesuffix("_leftImg8bit.png") for p in images]
        super().__init__(images, labels, decode, transform, names)

    def _label_path(self, image: Path) -> Path:
        stem = image.name.removesuffix("_leftImg8bit.png")
        city = image.parent.name
        return (
            self.root
            / self.annotation
            / self.split
            / city
            / f"{stem}_{self.annotation}_labelIds.png"
        )


class CityscapesDataModule(SplitsDataModule):
    """Cityscapes train/val loaders for semantic segmentation (19 classes, 255 ignore).

    Args:
        root: dataset root (``data.root=/path/to/cityscapes``).
        **loading: batch sizes, workers, transforms, ``on_bad_sample``, ``labeled_fraction``
            and the other loading options of `SplitsDataModule`.
        annotation: "gtFine" (default) or "gtCoarse".
        num_workers, pin_memory: loader settings (``pin_memory`` only helps on CUDA).
        num_classes, ignore_index, class_names, palette, in_channels: dataset facts, checked
            against the official table.
        image_size, crop_size: [height, width] of the full images (validation) and of the
            training crops; `segkit.train` checks the network accepts both.
    """

    has_labeled_test = False  # the public test labels are placeholders

    def __init__(
        self,
        root: str,
        annotation: str = "gtFine",
        num_classes: int = 19,
        ignore_index: int = 255,
        class_names: Sequence[str] | None = None,
        palette: Sequence[Sequence[int]] | None = None,
        in_channels: int = 3,
        image_size: Sequence[int] = (1024, 2048),
        crop_size: Sequence[int] = (512, 1024),
        **loading: Any,
    ) -> None:
        super().__init__(**loading)
        official = [lb.name for lb in TRAIN_LABELS]
        if num_classes != 19 or ignore_index != 255 or in_channels != 3:
            raise ValueError(
                "Cityscapes has 19 classes, ignore index 255 and RGB images: got "
                f"num_classes={num_classes}, ignore_index={ignore_index}, in_channels={in_channels}"
            )
        if class_names is not None and list(class_names) != official:
            raise ValueError(f"data.class_names must be the official trainId order: {official}")
        self.root, self.annotation = root, annotation
        self.image_size, self.crop_size = list(image_size), list(crop_size)
        self.num_classes, self.ignore_index, self.class_names = 19, 255, official
        self.palette = [list(lb.color) for lb in TRAIN_LABELS] if palette is None else palette

    def build_dataset(self, split: str) -> CityscapesSegmentation:
        return CityscapesSegmentation(self.root, split, self.annotation, self.transform(split))
