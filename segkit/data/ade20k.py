"""ADE20K scene parsing (Zhou et al. 2017), the 150-class benchmark release.

    <root>/images/{training,validation}/ADE_{train,val}_<8 digits>.jpg
    <root>/annotations/{training,validation}/ADE_{train,val}_<8 digits>.png

``root`` is the ``ADEChallengeData2016`` folder of the official archive. Annotations are 8-bit
grey PNGs: 0 is "other" (not one of the 150 classes) and becomes the ignore index 255, and
value v in 1..150 becomes class v - 1, the convention of the benchmark's own evaluation and
of mmsegmentation's ``reduce_zero_label``. Class names are the first name of each line of
the release's ``objectInfo150.txt`` (CSAILVision/sceneparsing, BSD-style licence). The
challenge's test images have no public labels: there is no labelled test split.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from segkit.data.base import SplitsDataModule
from segkit.data.paired import IndexMasks, PairedSegmentation, label_lut

SPLIT_FOLDERS = {"train": "training", "val": "validation"}
_EXPECTED_TREE = (
    "expected the ADEChallengeData2016 layout: <root>/images/{training,validation}/*.jpg and "
    "<root>/annotations/{training,validation}/*.png"
)


def ade20k_lut() -> Any:
    """Raw annotation value -> class: 0 ("other") -> 255, v in 1..150 -> v - 1."""
    return label_lut({0: 255, **{v: v - 1 for v in range(1, 151)}})


def pair_split(root: Path, split: str) -> tuple[list[Path], list[Path]]:
    """(images, annotations) of a split, paired by stem; names the first unpaired file."""
    folder = SPLIT_FOLDERS[split]
    image_dir, label_dir = root / "images" / folder, root / "annotations" / folder
    for directory in (image_dir, label_dir):
        if not directory.is_dir():
            raise FileNotFoundError(f"ADE20K folder {directory} does not exist; {_EXPECTED_TREE}")
    images = sorted(image_dir.glob("*.jpg"))
    if not images:
        raise FileNotFoundError(f"no .jpg image in {image_dir}; {_EXPECTED_TREE}")
    labels = {p.stem: p for p in label_dir.glob("*.png")}
    lonely = [p for p in images if p.stem not in labels]
    if lonely:
        raise FileNotFoundError(
            f"{len(lonely)} of {len(images)} {split} images have no annotation, first: "
            f"{lonely[0]} (expected {label_dir / (lonely[0].stem + '.png')})"
        )
    extra = sorted(set(labels) - {p.stem for p in images})
    if extra:
        raise FileNotFoundError(
            f"{len(extra)} annotations have no image, first: {labels[extra[0]]}"
        )
    return images, [labels[p.stem] for p in images]


def read_object_info(path: Path) -> list[str]:
    """Class names from the release's ``objectInfo150.txt``: the first name of each row
    (tab-separated ``Idx Ratio Train Val Name``; names are comma-separated synonyms)."""
    rows = path.read_text().splitlines()[1:]
    return [row.split("\t")[-1].split(",")[0].strip() for row in rows if row.strip()]


class ADE20KDataModule(SplitsDataModule):
    """ADE20K train/val loaders: 150 classes, "other" (raw 0) ignored as 255.

    Args:
        root: the ``ADEChallengeData2016`` folder.
        num_classes, ignore_index, class_names, palette, in_channels: dataset facts
            (150 classes, 255, 150 names, 150 colours, RGB).
        crop_size: [height, width] of the training crops (checked against the network).
        **loading: batch sizes, workers, transforms, ``on_bad_sample``, ``labeled_fraction``
            and the other loading options of `SplitsDataModule`.
    """

    def __init__(
        self,
        root: str,
        class_names: Sequence[str],
        palette: Sequence[Sequence[int]],
        num_classes: int = 150,
        ignore_index: int = 255,
        in_channels: int = 3,
        crop_size: Sequence[int] = (512, 512),
        **loading: Any,
    ) -> None:
        super().__init__(**loading)
        if (num_classes, ignore_index, in_channels) != (150, 255, 3):
            raise ValueError(
                "ADE20K has 150 classes, ignore index 255 and RGB images: got "
                f"num_classes={num_classes}, ignore_index={ignore_index}, in_channels={in_channels}"
            )
        if len(class_names) != 150 or len(palette) != 150:
            raise ValueError(
                f"ADE20K needs 150 class names and 150 colours: got {len(class_names)} names "
                f"and {len(palette)} colours"
            )
        self.root = Path(root)
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.class_names, self.palette = list(class_names), [list(c) for c in palette]
        self.crop_size = list(crop_size)

    def build_dataset(self, split: str) -> PairedSegmentation:
        if split not in SPLIT_FOLDERS:
            raise ValueError(f"ADE20K has train and val splits with labels, not {split!r}")
        info = self.root / "objectInfo150.txt"
        released = read_object_info(info) if info.is_file() else self.class_names
        if released != self.class_names:
            raise ValueError(
                f"data.class_names differ from {info}, which lists {released[:5]}"
                "...: keep the order of the release (value v is class v - 1)"
            )
        images, labels = pair_split(self.root, split)
        decode = IndexMasks(
            ade20k_lut(), invalid="values {values} that are not ADE20K labels (0..150)"
        )
        return PairedSegmentation(
            images, labels, decode, self.transform(split), reader=self.image_reader(3)
        )
