"""Pascal VOC 2012 segmentation (Everingham et al. 2010), with the SBD augmented training set.

    <root>/JPEGImages/<id>.jpg
    <root>/SegmentationClass/<id>.png           palette PNGs: 0..20, 255 on object borders
    <root>/ImageSets/Segmentation/{train,val}.txt
    <root>/SegmentationClassAug/<id>.png        optional: SBD labels (Hariharan et al. 2011)
    <root>/ImageSets/Segmentation/trainaug.txt  optional: the 10,582 "train_aug" ids

``root`` is the ``VOC2012`` folder (``VOCdevkit/VOC2012`` in the official archive). When both
optional parts are present, training uses ``trainaug.txt`` with ``SegmentationClassAug``, as
the DeepLab recipes do (``train_set: auto``); validation always uses the official val list.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from segkit.data.base import SplitsDataModule, check_fixed_facts
from segkit.data.paired import IndexMasks, PairedSegmentation, label_lut, require_files

CLASS_NAMES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip


def voc_palette(num_classes: int = 21) -> list[list[int]]:
    """The VOC colour map: class bits spread over the high bits of R, G and B."""
    palette = []
    for label in range(num_classes):
        r = g = b = 0
        c = label
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette.append([r, g, b])
    return palette


def read_ids(list_file: Path) -> list[str]:
    """Image ids of a VOC ``ImageSets`` list (one per line; extra columns ignored)."""
    if not list_file.is_file():
        raise FileNotFoundError(f"VOC list file {list_file} does not exist")
    ids = [line.split()[0] for line in list_file.read_text().splitlines() if line.strip()]
    if not ids:
        raise ValueError(f"VOC list file {list_file} lists no image")
    return ids


class VOCDataModule(SplitsDataModule):
    """Pascal VOC 2012: 21 classes (background included), object borders (255) ignored.

    Args:
        root: the ``VOC2012`` folder.
        train_set: "auto" (SBD ``trainaug`` when present, else ``train``), "train" or "trainaug".
        **loading: batch sizes, workers, transforms, ``on_bad_sample``, ``labeled_fraction``
            and the other loading options of `SplitsDataModule`.
        num_classes, ignore_index, class_names, palette, in_channels: dataset facts.
        crop_size: [height, width] of the training crops (checked against the network).
    """

    def __init__(
        self,
        root: str,
        train_set: str = "auto",
        num_classes: int = 21,
        ignore_index: int = 255,
        class_names: Sequence[str] | None = None,
        palette: Sequence[Sequence[int]] | None = None,
        in_channels: int = 3,
        crop_size: Sequence[int] = (512, 512),
        **loading: Any,
    ) -> None:
        super().__init__(**loading)
        check_fixed_facts("Pascal VOC", 21, num_classes, ignore_index, in_channels)
        if train_set not in ("auto", "train", "trainaug"):
            raise ValueError(
                f"train_set={train_set!r} is invalid: expected auto, train or trainaug"
            )
        self.root, self.train_set = Path(root), train_set
        self.num_classes, self.ignore_index = 21, 255
        self.class_names = list(class_names or CLASS_NAMES)
        self.palette = [list(c) for c in palette] if palette is not None else voc_palette()
        self.crop_size = list(crop_size)

    def _sbd_present(self) -> bool:
        return (self.root / "SegmentationClassAug").is_dir() and (
            self.root / "ImageSets" / "Segmentation" / "trainaug.txt"
        ).is_file()

    def build_dataset(self, split: str) -> PairedSegmentation:
        lists = self.root / "ImageSets" / "Segmentation"
        mask_dir = self.root / "SegmentationClass"
        list_name = split
        if split == "train" and (
            self.train_set == "trainaug" or (self.train_set == "auto" and self._sbd_present())
        ):
            list_name, mask_dir = "trainaug", self.root / "SegmentationClassAug"
        ids = read_ids(lists / f"{list_name}.txt")
        images = [self.root / "JPEGImages" / f"{i}.jpg" for i in ids]
        masks = [mask_dir / f"{i}.png" for i in ids]
        require_files([p for pair in zip(images, masks, strict=True) for p in pair])
        decode = IndexMasks(label_lut({**{c: c for c in range(21)}, 255: 255}))
        return PairedSegmentation(
            images, masks, decode, self.transform(split), reader=self.image_reader(3)
        )
