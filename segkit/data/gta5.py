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

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from segkit.data.cityscapes_labels import TRAIN_LABELS, label_id_to_train_id
from segkit.data.paired import IndexMasks, frame_pairs
from segkit.data.rendered_frames import RenderedFramesDataModule

_EXPECTED_TREE = "expected <root>/images/<name>.png and <root>/labels/<name>.png"


def gta5_pairs(root: str | Path) -> tuple[list[Path], list[Path]]:
    """(images, label files) of a GTA5 root, sorted by name; a missing folder or label file
    fails here, naming it."""
    root = Path(root)
    return frame_pairs("GTA5", root / "images", root / "labels", _EXPECTED_TREE)


class GTA5DataModule(RenderedFramesDataModule):
    """GTA5 as semantic samples with Cityscapes' 19 classes; arguments as for
    `RenderedFramesDataModule` (``root``: the folder holding ``images/`` and ``labels/``)."""

    dataset_name = "GTA5"
    classes = tuple(label.name for label in TRAIN_LABELS)

    def frames(self) -> tuple[list[Path], list[Path]]:
        return gta5_pairs(self.root)

    def decoder(self) -> Callable[[Image.Image, Path], np.ndarray]:
        lut = label_id_to_train_id()
        lut[lut < 0] = self.ignore_index
        return IndexMasks(lut)
