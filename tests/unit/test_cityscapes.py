"""Cityscapes loading on a fixture tree in the official layout (written by the exporter, plus
special-case files written here): label mapping, training pipeline, seeding, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image

from segkit.data.cityscapes import CityscapesDataModule, CityscapesSegmentation
from segkit.data.cityscapes_labels import LABELS, TRAIN_LABELS, label_id_to_train_id


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
        match=r"1 of 2 train images have no label file, "
        r"first: .*ulm_000001_000019_gtFine_labelIds.png",
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
