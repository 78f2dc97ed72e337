"""COCO-format instance segmentation (Lin et al. 2014), read through pycocotools.

    <root>/train2017/*.jpg      <root>/annotations/instances_train2017.json
    <root>/val2017/*.jpg        <root>/annotations/instances_val2017.json

Any dataset in COCO's JSON format works: the image folder and annotation file of each split
are configurable. Masks may be polygons, RLE or uncompressed RLE. Category ids, which need
not be contiguous (COCO's run 1..90 for 80 classes), become labels 1..K in increasing id order
(0 is background), and their names are kept. Crowd regions (``iscrowd: 1``) are not instances
to learn: they are left out of the targets, as in torchvision's detection references.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from segkit.data.base import SplitsDataModule
from segkit.data.image_reader import ImageReader
from segkit.data.instances import instance_sample
from segkit.data.transforms import WorkerSeededTransform

#: COCO 2017's layout; other COCO-format datasets override it per split.
COCO_SPLITS = {
    "train": {"images": "train2017", "annotations": "annotations/instances_train2017.json"},
    "val": {"images": "val2017", "annotations": "annotations/instances_val2017.json"},
}


def load_coco(annotation_file: Path) -> Any:
    """A pycocotools ``COCO`` index of `annotation_file` (its progress prints silenced)."""
    from pycocotools.coco import COCO

    if not annotation_file.is_file():
        raise FileNotFoundError(f"COCO annotation file {annotation_file} does not exist")
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(str(annotation_file))
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{annotation_file} is not a COCO instances file: {err!r}") from err
    # pycocotools accepts a file without these and indexes nothing: an empty split, silently.
    missing = [k for k in ("images", "annotations", "categories") if k not in coco.dataset]
    if missing:
        raise ValueError(
            f"{annotation_file} is not a COCO instances file: it has no {', '.join(missing)}"
        )
    return coco


class CocoInstances(Dataset):
    """The images of one COCO annotation file as instance samples (see `instance_sample`).

    Every image listed in the file is a sample, including images without annotations
    (their targets are empty). Image files and category ids are checked when the dataset is
    built; an image whose size differs from the file's ``height``/``width`` fails when read.

    Args:
        image_dir: folder the ``file_name`` of each image is relative to.
        annotation_file: the COCO instances JSON.
        transform: albumentations pipeline, given the instance masks as ``masks=``.
        reader: the `ImageReader` of the images (RGB; EXIF orientation; bit depth).

    Targets also hold ``iscrowd`` int64 [N] and ``area`` float32 [N] (the file's areas):
    crowd regions are kept, flagged, for evaluation as COCOeval scores it.
    """

    def __init__(
        self,
        image_dir: str | Path,
        annotation_file: str | Path,
        transform: Callable[..., dict[str, Any]] | None = None,
        reader: ImageReader | None = None,
    ) -> None:
        self.image_dir, self.annotation_file = Path(image_dir), Path(annotation_file)
        self.reader = reader or ImageReader()
        self.coco = load_coco(self.annotation_file)
        self.category_ids = sorted(self.coco.getCatIds())
        self.label_of_category = {c: k + 1 for k, c in enumerate(self.category_ids)}
        self.category_names = [self.coco.cats[c]["name"] for c in self.category_ids]
        unknown = [a for a in self.coco.anns.values() if a["category_id"] not in self.coco.cats]
        if unknown:
            raise ValueError(
                f"{self.annotation_file}: annotation {unknown[0]['id']} has category_id "
                f"{unknown[0]['category_id']}, which is not in its categories"
            )
        self.image_ids = sorted(self.coco.imgs)
        self.names = [Path(self.coco.imgs[i]["file_name"]).stem for i in self.image_ids]
        paths = [self.image_dir / self.coco.imgs[i]["file_name"] for i in self.image_ids]
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} images listed in {self.annotation_file} do not exist, "
                f"first: {missing[0]}"
            )
        self.transform = WorkerSeededTransform(transform) if transform is not None else None

    def __len__(self) -> int:
        return len(self.image_ids)

    def __getitem__(self, index: int) -> dict[str, Any]:
        info = self.coco.imgs[self.image_ids[index]]
        path = self.image_dir / info["file_name"]
        image = self.reader.read(path, f" (sample {index})")
        if image.shape[:2] != (info["height"], info["width"]):
            raise ValueError(
                f"{path} is {image.shape[1]}x{image.shape[0]} but {self.annotation_file} says "
                f"{info['width']}x{info['height']}"
            )
        anns = [a for a in self.coco.imgToAnns.get(info["id"], []) if a.get("segmentation")]
        masks = np.zeros((len(anns), info["height"], info["width"]), dtype=bool)
        for k, ann in enumerate(anns):
            masks[k] = self.coco.annToMask(ann).astype(bool)
        labels = np.array([self.label_of_category[a["category_id"]] for a in anns], np.int64)
        # Crowd regions stay in the target, flagged: evaluation ignores detections on them as
        # COCOeval does; training leaves them out (segkit.tasks.instance), as torchvision's
        # references do. `area` is the file's, which COCOeval's area ranges use.
        extra = {
            "iscrowd": np.array([int(a.get("iscrowd", 0)) for a in anns], np.int64),
            "area": np.array(
                [a.get("area", 0.0) or m.sum() for a, m in zip(anns, masks, strict=True)],
                np.float32,
            ),
        }
        sample = instance_sample(image, masks, labels, self.names[index], self.transform, extra)
        # COCO's own ids travel with the sample: exported predictions use them, as evaluation
        # servers and COCOeval on the original annotation file expect.
        sample["image_id"] = int(info["id"])
        sample["category_ids"] = self.category_ids  # of labels 1..C-1
        return sample


class CocoInstanceDataModule(SplitsDataModule):
    """Train/val loaders of instance samples from COCO-format files.

    Args:
        root: the dataset folder; split paths below are relative to it.
        splits: ``{split: {"images": folder, "annotations": json file}}`` for "train" and
            "val" (default: COCO 2017's names).
        num_classes: categories + 1 (background included, torchvision's convention).
        class_names: ``["background", <category names in id order>]``; checked against each
            annotation file, so labels mean the same thing in every split.
        ignore_index, palette, in_channels: dataset facts of the data config contract.
        category_ids: the annotation files' category ids of labels 1..K, in id order (null:
            read from the training annotations; training records them in the run's config and
            checkpoints, so predictions name the file's ids). Checked against each file.
        task: "instance" (the only kind of sample this module gives).
        **loading: batch sizes, workers, transforms, ``on_bad_sample`` and the other loading
            options of `SplitsDataModule`.
    """

    tasks = ("instance",)

    def __init__(
        self,
        root: str,
        num_classes: int,
        class_names: Sequence[str],
        palette: Sequence[Sequence[int]],
        splits: dict[str, dict[str, str]] | None = None,
        ignore_index: int = 255,
        in_channels: int = 3,
        task: str = "instance",
        category_ids: Sequence[int] | None = None,
        **loading: Any,
    ) -> None:
        super().__init__(task=task, **loading)
        if len(class_names) != num_classes or len(palette) != num_classes:
            raise ValueError(
                f"num_classes={num_classes} needs as many class names (background first) and "
                f"colours: got {len(class_names)} names and {len(palette)} colours"
            )
        if in_channels != 3:
            raise ValueError(f"in_channels={in_channels}: COCO images are read as RGB (3)")
        self.root, self.splits = Path(root), {**COCO_SPLITS, **(splits or {})}
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.class_names, self.palette = list(class_names), [list(c) for c in palette]
        self.expected_ids = [int(c) for c in category_ids] if category_ids is not None else None

    def category_ids(self) -> list[int]:
        """The category ids of labels 1..K (the training annotation file's, in id order)."""
        return list(self.dataset("train").dataset.category_ids)

    def build_dataset(self, split: str) -> CocoInstances:
        if split not in self.splits:
            raise ValueError(f"no {split!r} split in data.splits: {sorted(self.splits)}")
        paths = self.splits[split]
        dataset = CocoInstances(
            self.root / paths["images"],
            self.root / paths["annotations"],
            self.transform(split),
            self.image_reader(3),
        )
        if dataset.category_names != self.class_names[1:]:
            raise ValueError(
                f"{dataset.annotation_file} has categories {dataset.category_names[:5]}... "
                f"({len(dataset.category_names)}) but data.class_names[1:] is "
                f"{self.class_names[1:6]}... ({len(self.class_names) - 1}): set data.num_classes "
                "and data.class_names to its categories in id order, background first"
            )
        if self.expected_ids is not None and dataset.category_ids != self.expected_ids:
            raise ValueError(
                f"{dataset.annotation_file} has category ids {dataset.category_ids[:8]} but the "
                f"model's labels name ids {self.expected_ids[:8]} (data.category_ids): the "
                "files' categories differ from those the model was trained on"
            )
        return dataset
