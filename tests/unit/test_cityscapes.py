"""Cityscapes loading on a fixture tree in the official layout (written by the exporter, plus
special-case files written here): label mapping, training pipeline, seeding, bad input."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image

from segkit.data.cityscapes import (
    CityscapesDataModule,
    CityscapesInstances,
    CityscapesSegmentation,
)
from segkit.data.cityscapes_labels import (
    LABELS,
    THING_LABELS,
    TRAIN_LABELS,
    label_id_to_train_id,
)


def test_label_table_matches_cityscapesscripts():
    from cityscapesscripts.helpers.labels import labels as official

    ours = [(lb.name, lb.id, lb.train_id, lb.has_instances, lb.color) for lb in LABELS]
    theirs = [(lb.name, lb.id, lb.trainId, lb.hasInstances, lb.color) for lb in official]
    assert ours == theirs
    assert len(TRAIN_LABELS) == 19 and [lb.train_id for lb in TRAIN_LABELS] == list(range(19))


def test_label_ids_map_to_train_ids():
    lut = label_id_to_train_id()
    assert (lut[7], lut[26], lut[0], lut[24], lut[33], lut[9]) == (0, 13, 255, 11, 18, 255)
    assert lut[34] == -1 and lut[255] == 255  # unknown value / licence plate (-1 as uint8)


def test_samples_follow_the_contract(cityscapes_root):
    ds = CityscapesSegmentation(cityscapes_root, "train")
    assert len(ds) == 4
    sample = ds[0]
    assert sample["image"].shape == (3, 64, 128) and sample["image"].dtype == torch.float32
    assert sample["mask"].shape == (64, 128) and sample["mask"].dtype == torch.int64
    assert sample["name"].startswith("aachen_") or sample["name"].startswith("bremen_")
    # The exporter writes synthetic classes as road(7)/person(24)/car(26)/truck(27)/bicycle(33).
    raw = np.asarray(Image.open(ds.masks[0]))
    expected = label_id_to_train_id()[raw]
    assert torch.equal(sample["mask"], torch.from_numpy(expected.astype(np.int64)))
    assert set(np.unique(expected)) <= {0, 11, 13, 14, 18}


def test_training_pipeline_crops_pads_with_ignore_and_is_seeded(compose_train, cityscapes_root):
    cfg = compose_train("data=cityscapes", f"data.root={cityscapes_root}", "data.crop_size=[96,96]")
    dm = instantiate(cfg.data, _convert_="all", num_workers=2, batch_size=2)
    dm.setup("fit")
    ds = dm.dataset("train")
    masks = [ds[0]["mask"] for _ in range(6)]
    assert all(m.shape == (96, 96) for m in masks)
    # Scale 0.5..2 of a 64x128 image: crops of a downscaled image are padded with 255.
    assert any((m == 255).any() for m in masks)
    assert len({m.sum().item() for m in masks}) > 1  # random from call to call

    def batches(seed):
        torch.manual_seed(seed)
        return [b["mask"] for b in dm.train_dataloader()]

    first, again = batches(0), batches(0)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, batches(1), strict=True))


def test_no_labelled_test_split(cityscapes_root):
    assert CityscapesDataModule.has_labeled_test is False
    dm = CityscapesDataModule(str(cityscapes_root), num_workers=0)
    assert dm.class_names[:3] == ["road", "sidewalk", "building"] and len(dm.palette) == 19


def test_missing_split_shows_the_expected_tree(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"leftImg8bit/train does not exist; expected"):
        CityscapesSegmentation(tmp_path, "train")


def write_pair(root, city, stem, image_size, label):
    img_dir = root / "leftImg8bit" / "train" / city
    gt_dir = root / "gtFine" / "train" / city
    img_dir.mkdir(parents=True, exist_ok=True)
    gt_dir.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", image_size).save(img_dir / f"{stem}_leftImg8bit.png")
    if label is not None:
        Image.fromarray(label).save(gt_dir / f"{stem}_gtFine_labelIds.png")
    return gt_dir / f"{stem}_gtFine_labelIds.png"


def test_image_without_label_is_named_when_built(tmp_path):
    write_pair(tmp_path, "ulm", "ulm_000000_000019", (8, 4), np.full((4, 8), 7, np.uint8))
    write_pair(tmp_path, "ulm", "ulm_000001_000019", (8, 4), None)
    with pytest.raises(
        FileNotFoundError,
        match=r"1 of 2 train images have no labelIds file, "
        r"first: .*ulm_000001_000019_gtFine_labelIds.png",
    ):
        CityscapesSegmentation(tmp_path, "train")
    (tmp_path / "leftImg8bit/train/ulm/ulm_000000_000019_leftImg8bit.png").unlink()
    write_pair(tmp_path, "ulm", "ulm_000001_000019", (8, 4), np.full((4, 8), 7, np.uint8))
    with pytest.raises(
        FileNotFoundError, match=r"1 labelIds files have no image, first: .*ulm_000000"
    ):
        CityscapesSegmentation(tmp_path, "train")


def test_size_mismatch_and_unknown_labels_are_named(tmp_path):
    small = write_pair(tmp_path, "ulm", "ulm_000000_000019", (8, 4), np.full((2, 8), 7, np.uint8))
    bad = np.full((4, 8), 7, np.uint8)
    bad[0, 0] = 40
    unknown = write_pair(tmp_path, "ulm", "ulm_000001_000019", (8, 4), bad)
    ds = CityscapesSegmentation(tmp_path, "train")
    with pytest.raises(ValueError, match=rf"{small} is 8x2 but its image .* is 8x4"):
        ds[0]
    with pytest.raises(ValueError, match=rf"{unknown} holds values \[40\] that are not"):
        ds[1]


def test_instance_ids_become_the_eight_thing_instances(tmp_path):
    write_pair(tmp_path, "ulm", "ulm_000000_000019", (8, 4), np.full((4, 8), 7, np.uint8))
    ids = np.full((4, 8), 7, np.uint16)  # road (stuff)
    ids[0, :2] = 26000  # car, instance 0
    ids[1:3, 6:] = 26001  # car, instance 1
    ids[3, 0] = 24000  # person
    ids[3, 4] = 26  # a car group without instance id: not an instance
    ids[0, 4:6] = 29000  # caravan: has instances but is not evaluated
    gt = tmp_path / "gtFine" / "train" / "ulm" / "ulm_000000_000019_gtFine_instanceIds.png"
    Image.fromarray(ids).save(gt)
    sample = CityscapesInstances(tmp_path, "train")[0]
    target = sample["target"]
    assert [THING_LABELS[k - 1].name for k in target["labels"].tolist()] == ["person", "car", "car"]
    assert target["masks"].shape == (3, 4, 8) and target["masks"].dtype == torch.uint8
    assert target["boxes"].tolist() == [[0, 3, 1, 4], [0, 0, 2, 1], [6, 1, 8, 3]]
    assert sample["image"].shape == (3, 4, 8) and sample["image"].max() <= 1.0


def test_instance_task_augments_masks_and_boxes_together(compose_train, cityscapes_root):
    cfg = compose_train(
        "data=cityscapes",
        f"data.root={cityscapes_root}",
        "data.task=instance",
        "data.crop_size=[96,96]",
    )
    dm = instantiate(cfg.data, _convert_="all", num_workers=0, batch_size=4)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert isinstance(batch["target"], list) and len(batch["image"]) == 4
    instances = 0
    for image, target in zip(batch["image"], batch["target"], strict=True):
        assert image.shape == (3, 96, 96)
        masks, boxes = target["masks"], target["boxes"]
        assert masks.shape[1:] == (96, 96) and len(boxes) == len(target["labels"])
        assert set(masks.unique().tolist()) <= {0, 1}  # padding (255) is no instance
        for mask, box in zip(masks, boxes, strict=True):
            ys, xs = torch.nonzero(mask, as_tuple=True)
            assert box.tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        instances += len(boxes)
    assert instances > 0 and all(1 <= k <= 8 for t in batch["target"] for k in t["labels"])


def test_coarse_annotations_train_on_train_extra(cityscapes_root, tmp_path):
    for folder in ("leftImg8bit", "gtFine"):
        shutil.copytree(cityscapes_root / folder / "train", tmp_path / folder / "train_extra")
        shutil.copytree(cityscapes_root / folder / "val", tmp_path / folder / "val")
    for path in list((tmp_path / "gtFine").rglob("*_gtFine_*.png")):
        coarse = tmp_path / "gtCoarse" / path.relative_to(tmp_path / "gtFine")
        coarse.parent.mkdir(parents=True, exist_ok=True)
        path.rename(coarse.with_name(path.name.replace("_gtFine_", "_gtCoarse_")))
    dm = CityscapesDataModule(
        str(tmp_path), annotation="gtCoarse", train_split="train_extra", num_workers=0
    )
    assert len(dm.dataset("train")) == 4 and len(dm.dataset("val")) == 4
    assert dm.dataset("train").masks[0].name.endswith("_gtCoarse_labelIds.png")
    assert dm.dataset("train")[0]["mask"].shape == (64, 128)
    with pytest.raises(FileNotFoundError, match=r"leftImg8bit/train does not exist"):
        CityscapesDataModule(str(tmp_path), annotation="gtCoarse", num_workers=0).dataset("train")
