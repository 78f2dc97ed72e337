"""SYNTHIA-RAND-CITYSCAPES (Ros et al., "The SYNTHIA Dataset", CVPR 2016): 9,400 rendered
city frames labelled in classes compatible with Cityscapes. The second usual source domain of
adaptation to Cityscapes (``data=synthia_cityscapes``, docs/domain_adaptation.md).

    <root>/RGB/0000000.png ... 0009399.png         1280x760 RGB
    <root>/GT/LABELS/0000000.png ... 0009399.png   16-bit, 3-channel PNGs: the first (red)
                                                   channel is the SYNTHIA class id (0..22),
                                                   the second an instance id

The label files are 48-bit PNGs, which Pillow reads as 8-bit RGB by dropping the low byte
of each value (every class id would read 0): they are decoded with OpenCV, as the adaptation
papers' code does. SYNTHIA's ids become the 16 classes that it shares with Cityscapes
(`SYNTHIA_CLASSES`, the usual "16-class" protocol: Cityscapes' 19 without terrain, truck and
train); void, parking slots, road works, lane markings and SYNTHIA's few terrain, truck and
train pixels are ignored. An id above 22 is refused, naming the file. As for GTA5 the last
``val_size`` frames (sorted by name) are held out as the source's validation split.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from segkit.data.base import SplitsDataModule
from segkit.data.cityscapes_labels import TRAIN_LABELS
from segkit.data.paired import PairedSegmentation

#: The 16 classes of the SYNTHIA -> Cityscapes protocol, in Cityscapes' trainId order.
SYNTHIA_CLASSES = (
    "road",
    "sidewalk",
    "building",
    "wall",
    "fence",
    "pole",
    "traffic light",
    "traffic sign",
    "vegetation",
    "sky",
    "person",
    "rider",
    "car",
    "bus",
    "motorcycle",
    "bicycle",
)
#: SYNTHIA class id (its README) -> index in `SYNTHIA_CLASSES`; the other ids 0..22 are ignored.
SYNTHIA_ID_TO_CLASS = {
    3: 0,  # road
    4: 1,  # sidewalk
    2: 2,  # building
    21: 3,  # wall
    5: 4,  # fence
    7: 5,  # pole
    15: 6,  # traffic light
    9: 7,  # traffic sign
    6: 8,  # vegetation
    1: 9,  # sky
    10: 10,  # pedestrian -> person
    17: 11,  # rider
    8: 12,  # car
    19: 13,  # bus
    12: 14,  # motorcycle
    11: 15,  # bicycle
}
#: SYNTHIA's largest class id (22, lane marking).
SYNTHIA_MAX_ID = 22
_EXPECTED_TREE = "expected <root>/RGB/<name>.png and <root>/GT/LABELS/<name>.png"


def synthia_pairs(root: str | Path) -> tuple[list[Path], list[Path]]:
    """(images, label files) of a SYNTHIA-RAND-CITYSCAPES root, sorted by name; a missing
    folder or label file fails here, naming it."""
    root = Path(root)
    image_dir, label_dir = root / "RGB", root / "GT" / "LABELS"
    for folder in (image_dir, label_dir):
        if not folder.is_dir():
            raise FileNotFoundError(f"SYNTHIA folder {folder} does not exist; {_EXPECTED_TREE}")
    images = sorted(image_dir.glob("*.png"))
    if not images:
        raise FileNotFoundError(f"no .png image in {image_dir}; {_EXPECTED_TREE}")
    labels = [label_dir / p.name for p in images]
    missing = [p for p in labels if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} of {len(images)} SYNTHIA images have no label file, first: "
            f"{missing[0]}; {_EXPECTED_TREE}"
        )
    return images, labels


class SynthiaLabels:
    """Decodes SYNTHIA's 16-bit label PNGs into class indices (255 = ignore)."""

    def __init__(self, ignore_index: int = 255) -> None:
        self.lut = np.full(SYNTHIA_MAX_ID + 1, ignore_index, dtype=np.uint8)
        for synthia_id, index in SYNTHIA_ID_TO_CLASS.items():
            self.lut[synthia_id] = index

    def __call__(self, opened: Image.Image, path: Path) -> np.ndarray:
        import cv2  # albumentations' dependency; Pillow truncates 16-bit colour PNGs

        # `opened` (Pillow, lazy: no pixels decoded) is not used: its values are 8-bit.
        raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if raw is None:
            raise OSError(f"OpenCV cannot decode {path}")
        if raw.dtype != np.uint16 or raw.ndim != 3:
            raise ValueError(
                f"{path} is a {raw.dtype} image with {raw.shape[2] if raw.ndim == 3 else 1} "
                "channel(s): expected SYNTHIA's 16-bit label PNG with the class id in its first "
                "channel (GT/LABELS of SYNTHIA-RAND-CITYSCAPES)"
            )
        ids = raw[..., 2]  # OpenCV orders channels BGR(A): the file's first channel is [2]
        if int(ids.max()) > SYNTHIA_MAX_ID:
            bad = sorted(int(v) for v in np.unique(ids[ids > SYNTHIA_MAX_ID]))
            raise ValueError(
                f"{path} holds class ids {bad[:10]} that SYNTHIA does not have "
                f"(expected 0..{SYNTHIA_MAX_ID})"
            )
        return self.lut[ids]


class SynthiaDataModule(SplitsDataModule):
    """SYNTHIA-RAND-CITYSCAPES as semantic samples with the 16 classes it shares with
    Cityscapes (`SYNTHIA_CLASSES`).

    Args:
        root: the folder holding ``RGB/`` and ``GT/LABELS/``.
        val_size: frames held out (the last by name) as the validation split.
        num_classes, ignore_index, class_names, palette, in_channels: dataset facts, checked
            against the 16-class table.
        crop_size: [height, width] of the training crops (checked against the network).
        **loading: batch sizes, workers, transforms, ``on_bad_sample`` and the other loading
            options of `SplitsDataModule`.
    """

    def __init__(
        self,
        root: str,
        val_size: int = 500,
        num_classes: int = 16,
        ignore_index: int = 255,
        class_names: Sequence[str] | None = None,
        palette: Sequence[Sequence[int]] | None = None,
        in_channels: int = 3,
        crop_size: Sequence[int] = (512, 512),
        **loading: Any,
    ) -> None:
        super().__init__(**loading)
        if num_classes != 16 or ignore_index != 255 or in_channels != 3:
            raise ValueError(
                "SYNTHIA has the 16 classes it shares with Cityscapes, ignore index 255 and RGB "
                f"images: got num_classes={num_classes}, ignore_index={ignore_index}, "
                f"in_channels={in_channels}"
            )
        if class_names is not None and list(class_names) != list(SYNTHIA_CLASSES):
            raise ValueError(f"data.class_names must be SYNTHIA's 16 classes: {SYNTHIA_CLASSES}")
        if val_size < 1:
            raise ValueError(f"val_size={val_size} is invalid: expected at least 1 frame")
        self.root, self.val_size = Path(root), val_size
        self.num_classes, self.ignore_index = 16, 255
        self.class_names = list(SYNTHIA_CLASSES)
        colors = {lb.name: list(lb.color) for lb in TRAIN_LABELS}
        self.palette = [colors[n] for n in SYNTHIA_CLASSES] if palette is None else palette
        self.in_channels, self.crop_size = 3, list(crop_size)

    def build_dataset(self, split: str) -> Dataset:
        if split not in ("train", "val"):
            raise ValueError(f"SYNTHIA has train and val splits here, not {split!r}")
        images, labels = synthia_pairs(self.root)
        if len(images) <= self.val_size:
            raise ValueError(
                f"{self.root} holds {len(images)} SYNTHIA frames: too few to hold out "
                f"data.val_size={self.val_size} for validation and train on the rest"
            )
        cut = len(images) - self.val_size
        chosen = slice(0, cut) if split == "train" else slice(cut, None)
        return PairedSegmentation(
            images[chosen],
            labels[chosen],
            SynthiaLabels(self.ignore_index),
            self.transform(split),
            reader=self.image_reader(3),
        )
