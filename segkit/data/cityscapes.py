"""Cityscapes (Cordts et al. 2016) from its official layout, as semantic samples.

    <root>/leftImg8bit/{train,val,test}/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    <root>/gtFine/{train,val,test}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png
    <root>/gtFine/{train,val,test}/<city>/<city>_<seq>_<frame>_gtFine_instanceIds.png

Semantic task: labelIds are mapped to the 19 trainIds of the official table
(`cityscapes_labels`); every other labelId becomes the ignore index 255. Instance task: each
instanceId ``labelId * 1000 + k`` of the 8 evaluated thing classes is one instance, labelled
1..8 in `THING_LABELS` order (ids below 1000 are groups or stuff, not instances). ``gtCoarse``
replaces ``gtFine`` with ``annotation: gtCoarse`` (its extra split is ``train_extra``). The test
split's public labels are placeholders: it is for prediction only, so the data module has no
labelled test split.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from segkit.data.base import SplitsDataModule, check_fixed_facts
from segkit.data.cityscapes_labels import THING_LABELS, TRAIN_LABELS, label_id_to_train_id
from segkit.data.image_reader import ImageReader
from segkit.data.instances import instance_sample
from segkit.data.paired import IndexMasks, PairedSegmentation, read_pair
from segkit.data.transforms import WorkerSeededTransform

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
        reader: ImageReader | None = None,
    ) -> None:
        images, labels = cityscapes_pairs(root, split, annotation, "labelIds")
        decode = IndexMasks(
            label_id_to_train_id(), invalid="values {values} that are not Cityscapes labelIds"
        )
        names = [p.name.removesuffix("_leftImg8bit.png") for p in images]
        super().__init__(images, labels, decode, transform, names, reader)


def cityscapes_pairs(
    root: str | Path, split: str, annotation: str, kind: str
) -> tuple[list[Path], list[Path]]:
    """(images, annotation files of `kind`: "labelIds" or "instanceIds") of a split, sorted;
    a missing split folder or annotation file fails here, naming it."""
    root = Path(root)
    image_dir = root / "leftImg8bit" / split
    if not image_dir.is_dir():
        raise FileNotFoundError(
            f"Cityscapes split folder {image_dir} does not exist; {_EXPECTED_TREE}"
        )
    images = sorted(image_dir.glob("*/*_leftImg8bit.png"))
    if not images:
        raise FileNotFoundError(f"no *_leftImg8bit.png image under {image_dir}; {_EXPECTED_TREE}")
    labels = [
        root
        / annotation
        / split
        / p.parent.name
        / f"{p.name.removesuffix('_leftImg8bit.png')}_{annotation}_{kind}.png"
        for p in images
    ]
    missing = [p for p in labels if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} of {len(images)} {split} images have no {kind} file, "
            f"first: {missing[0]}; {_EXPECTED_TREE}"
        )
    orphans = sorted(set((root / annotation / split).glob(f"*/*_{kind}.png")) - set(labels))
    if orphans:
        raise FileNotFoundError(
            f"{len(orphans)} {kind} files have no image, first: {orphans[0]}; {_EXPECTED_TREE}"
        )
    return images, labels


class CityscapesInstances(Dataset):
    """One Cityscapes split as instance samples of the 8 thing classes (see `instance_sample`).

    Args:
        root, split, annotation: as for `CityscapesSegmentation`.
        transform: albumentations pipeline, given the instance masks as ``masks=``.
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        annotation: str = "gtFine",
        transform: Callable[..., dict[str, Any]] | None = None,
        reader: ImageReader | None = None,
    ) -> None:
        self.reader = reader or ImageReader()
        self.images, self.instance_files = cityscapes_pairs(root, split, annotation, "instanceIds")
        self.names = [p.name.removesuffix("_leftImg8bit.png") for p in self.images]
        self.transform = WorkerSeededTransform(transform) if transform is not None else None
        self.thing_of_label_id = {lb.id: k + 1 for k, lb in enumerate(THING_LABELS)}

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image, ids = read_pair(
            self.images[index], self.instance_files[index], _instance_ids, index, self.reader
        )
        instance_ids = [int(i) for i in np.unique(ids) if i // 1000 in self.thing_of_label_id]
        height, width = ids.shape
        masks = np.zeros((len(instance_ids), height, width), dtype=bool)
        for k, instance_id in enumerate(instance_ids):
            masks[k] = ids == instance_id
        labels = np.array([self.thing_of_label_id[i // 1000] for i in instance_ids], np.int64)
        return instance_sample(image, masks, labels, self.names[index], self.transform)


def _instance_ids(ids_image: Image.Image, path: Path) -> np.ndarray:
    """The 16-bit instanceIds image as int64 [H,W] (values labelId or labelId*1000+k)."""
    return np.array(ids_image).astype(np.int64)


class CityscapesDataModule(SplitsDataModule):
    """Cityscapes train/val loaders: semantic (19 classes, 255 ignore) or instance (8 things).

    Args:
        root: dataset root (``data.root=/path/to/cityscapes``).
        annotation: "gtFine" (default) or "gtCoarse".
        train_split: the split trained on: "train", or "train_extra" (gtCoarse only).
        task: "semantic" (masks of trainIds) or "instance" (see `CityscapesInstances`).
        instance_num_classes, instance_class_names, instance_label_ids: the instance task's
            facts: 9 classes (background and the 8 things in `THING_LABELS` order) and the
            labelId of each thing (for exports in the Cityscapes format).
        num_classes, ignore_index, class_names, palette, in_channels: dataset facts, checked
            against the official table.
        image_size, crop_size: [height, width] of the full images (validation) and of the
            training crops; `segkit.train` checks the network accepts both.
        **loading: batch sizes, workers, transforms, ``on_bad_sample``, ``labeled_fraction``
            and the other loading options of `SplitsDataModule`.
    """

    has_labeled_test = False  # the public test labels are placeholders
    tasks = ("semantic", "instance")

    def __init__(
        self,
        root: str,
        annotation: str = "gtFine",
        train_split: str = "train",
        task: str = "semantic",
        num_classes: int = 19,
        ignore_index: int = 255,
        class_names: Sequence[str] | None = None,
        palette: Sequence[Sequence[int]] | None = None,
        in_channels: int = 3,
        image_size: Sequence[int] = (1024, 2048),
        crop_size: Sequence[int] = (512, 1024),
        instance_num_classes: int = 9,
        instance_class_names: Sequence[str] | None = None,
        instance_label_ids: Sequence[int] | None = None,
        **loading: Any,
    ) -> None:
        super().__init__(task=task, **loading)
        official = [lb.name for lb in TRAIN_LABELS]
        check_fixed_facts("Cityscapes", 19, num_classes, ignore_index, in_channels)
        if class_names is not None and list(class_names) != official:
            raise ValueError(f"data.class_names must be the official trainId order: {official}")
        if annotation not in ("gtFine", "gtCoarse"):
            raise ValueError(f"annotation={annotation!r} is invalid: expected gtFine or gtCoarse")
        self.root, self.annotation, self.train_split, self.task = (
            root,
            annotation,
            train_split,
            task,
        )
        things = ["background", *(lb.name for lb in THING_LABELS)]
        thing_ids = [lb.id for lb in THING_LABELS]
        if (
            instance_num_classes != 9
            or list(instance_class_names or things) != things
            or list(instance_label_ids or thing_ids) != thing_ids
        ):
            raise ValueError(
                f"Cityscapes instance classes are fixed: instance_num_classes=9, "
                f"instance_class_names={things}, instance_label_ids={thing_ids}"
            )
        self.instance_num_classes, self.instance_class_names = 9, things
        self.instance_label_ids = thing_ids
        self.image_size, self.crop_size = list(image_size), list(crop_size)
        self.num_classes, self.ignore_index, self.class_names = 19, 255, official
        self.palette = [list(lb.color) for lb in TRAIN_LABELS] if palette is None else palette

    def build_dataset(self, split: str) -> Dataset:
        folder = self.train_split if split == "train" else split
        kind = CityscapesInstances if self.task == "instance" else CityscapesSegmentation
        reader = self.image_reader(3)
        return kind(self.root, folder, self.annotation, self.transform(split), reader)
