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

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from segkit.data.paired import frame_pairs
from segkit.data.rendered_frames import RenderedFramesDataModule

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
    return frame_pairs("SYNTHIA", root / "RGB", root / "GT" / "LABELS", _EXPECTED_TREE)


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


class SynthiaDataModule(RenderedFramesDataModule):
    """SYNTHIA-RAND-CITYSCAPES as semantic samples with the 16 classes it shares with
    Cityscapes (`SYNTHIA_CLASSES`); arguments as for `RenderedFramesDataModule` (``root``: the
    folder holding ``RGB/`` and ``GT/LABELS/``)."""

    dataset_name = "SYNTHIA"
    classes = SYNTHIA_CLASSES

    def frames(self) -> tuple[list[Path], list[Path]]:
        return synthia_pairs(self.root)

    def decoder(self) -> Callable[[Image.Image, Path], np.ndarray]:
        return SynthiaLabels(self.ignore_index)
