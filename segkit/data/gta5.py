"""GTA5 (Richter et al., "Playing for Data", ECCV 2016): 24,966 frames rendered from a video
game, labelled in the Cityscapes label set. The usual source domain of GTA5 -> Cityscapes
adaptation (``data=gta5_cityscapes``, docs/domain_adaptation.md).

    <root>/images/00001.png ... 24966.png     1914x1052 RGB (a few are another size)
    <root>/labels/00001.png ... 24966.png     palette PNGs whose values are Cityscapes labelIds

Labels are mapped to the 19 Cityscapes trainIds (`segkit.data.cityscapes_labels`); every other
value becomes the ignore index, as in the adaptation papers' code (their published numbers are
measured so). The adaptation papers train on every frame; here the last
``val_size`` frames (sorted by name) are held out as the source's validation split and the
rest train. A few GTA5 label files are not the size of their image: they are refused by name
(``data.on_bad_sample=skip`` skips them and counts them instead).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from segkit.data.base import SplitsDataModule
from segkit.data.cityscapes_labels import TRAIN_LABELS, label_id_to_train_id
from segkit.data.paired import IndexMasks, PairedSegmentation

_EXPECTED_TREE = "expected <root>/images/<name>.png and <root>/labels/<name>.png"


def gta5_pairs(root: str | Path) -> tuple[list[Path], list[Path]]:
    """(images, label files) of a GTA5 root, sorted by name; a missing folder or label file
    fails here, naming it."""
    root = Path(root)
    image_dir, label_dir = root / "images", root / "labels"
    for folder in (image_dir, label_dir):
        if not folder.is_dir():
            raise FileNotFoundError(f"GTA5 folder {folder} does not exist; {_EXPECTED_TREE}")
    images = sorted(image_dir.glob("*.png"))
    if not images:
        raise FileNotFoundError(f"no .png image in {image_dir}; {_EXPECTED_TREE}")
    labels = [label_dir / p.name for p in images]
    missing = [p for p in labels if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} of {len(images)} GTA5 images have no label file, first: "
            f"{missing[0]}; {_EXPECTED_TREE}"
        )
    return images, labels


class GTA5DataModule(SplitsDataModule):
    """GTA5 as semantic samples with Cityscapes' 19 classes.

    Args:
        root: the folder holding ``images/`` and ``labels/``.
        val_size: frames held out (the last by name) as the validation split.
        num_classes, ignore_index, class_names, palette, in_channels: dataset facts, checked
            against the Cityscapes table.
        crop_size: [height, width] of the training crops (checked against the network).
        **loading: batch sizes, workers, transforms, ``on_bad_sample`` and the other loading
            options of `SplitsDataModule`.
    """

    def __init__(
        self,
        root: str,
        val_size: int = 500,
        num_classes: int = 19,
        ignore_index: int = 255,
        class_names: Sequence[str] | None = None,
        palette: Sequence[Sequence[int]] | None = None,
        in_channels: int = 3,
        crop_size: Sequence[int] = (512, 512),
        **loading: Any,
    ) -> None:
        super().__init__(**loading)
        official = [lb.name for lb in TRAIN_LABELS]
        if num_classes != 19 or ignore_index != 255 or in_channels != 3:
            raise ValueError(
                "GTA5 has Cityscapes' 19 classes, ignore index 255 and RGB images: got "
                f"num_classes={num_classes}, ignore_index={ignore_index}, in_channels={in_channels}"
            )
        if class_names is not None and list(class_names) != official:
            raise ValueError(f"data.class_names must be Cityscapes' trainId order: {official}")
        if val_size < 1:
            raise ValueError(f"val_size={val_size} is invalid: expected at least 1 frame")
        self.root, self.val_size = Path(root), val_size
        self.num_classes, self.ignore_index, self.class_names = 19, 255, official
        self.palette = [list(lb.color) for lb in TRAIN_LABELS] if palette is None else palette
        self.in_channels, self.crop_size = 3, list(crop_size)

    def build_dataset(self, split: str) -> Dataset:
        if split not in ("train", "val"):
            raise ValueError(f"GTA5 has train and val splits here, not {split!r}")
        images, labels = gta5_pairs(self.root)
        if len(images) <= self.val_size:
            raise ValueError(
                f"{self.root} holds {len(images)} GTA5 frames: too few to hold out "
                f"data.val_size={self.val_size} for validation and train on the rest"
            )
        cut = len(images) - self.val_size
        chosen = slice(0, cut) if split == "train" else slice(cut, None)
        lut = label_id_to_train_id()
        lut[lut < 0] = self.ignore_index
        return PairedSegmentation(
            images[chosen],
            labels[chosen],
            IndexMasks(lut),
            self.transform(split),
            reader=self.image_reader(3),
        )
