"""Pascal VOC 2012 loading on fixture trees in the official layout: palette PNGs with 255
borders, ImageSets lists, the SBD trainaug set, and bad files named in errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image

from segkit.data.voc import CLASS_NAMES, VOCDataModule, voc_palette


def palette_png(labels: np.ndarray, path):
    """A label PNG as VOC ships it: mode P with the VOC colour map."""
    img = Image.fromarray(labels.astype(np.uint8), mode="P")
    flat = [c for rgb in voc_palette(256) for c in rgb]
    img.putpalette(flat)
    img.save(path)


def write_voc(root, ids_by_list, sbd_ids=(), size=(48, 40)):
    (root / "JPEGImages").mkdir(parents=True)
    (root / "SegmentationClass").mkdir()
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    rng = np.random.default_rng(0)
    all_ids = {i for ids in ids_by_list.values() for i in ids} | set(sbd_ids)
    for image_id in sorted(all_ids):
        pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "JPEGImages" / f"{image_id}.jpg")
        labels = np.zeros((size[1], size[0]), np.uint8)
        labels[10:30, 10:30] = 15  # person
        labels[10, 10:30] = 255  # object border: ignored
        palette_png(labels, root / "SegmentationClass" / f"{image_id}.png")
    for name, ids in ids_by_list.items():
        (root / "ImageSets" / "Segmentation" / f"{name}.txt").write_text("\n".join(ids) + "\n")
    if sbd_ids:
        (root / "SegmentationClassAug").mkdir()
        for image_id in sbd_ids:
            labels = np.full((size[1], size[0]), 7, np.uint8)  # car
            Image.fromarray(labels, mode="L").save(
                root / "SegmentationClassAug" / f"{image_id}.png"
            )
        (root / "ImageSets" / "Segmentation" / "trainaug.txt").write_text("\n".join(sbd_ids))


IDS = {"train": ["2007_000032", "2007_000039"], "val": ["2007_000033"]}


def test_palette_pngs_decode_to_class_indices_with_borders_ignored(tmp_path):
    write_voc(tmp_path, IDS)
    dm = VOCDataModule(str(tmp_path), num_workers=0)
    sample = dm.dataset("val")[0]
    assert sample["image"].shape == (3, 40, 48) and sample["name"] == "2007_000033"
    mask = sample["mask"]
    assert mask.dtype == torch.int64
    assert mask[20, 20] == CLASS_NAMES.index("person") == 15
    assert mask[10, 15] == 255 and mask[0, 0] == 0
    assert len(dm.dataset("train")) == 2
    assert dm.palette[15] == [192, 128, 128] and len(dm.class_names) == 21


def test_sbd_trainaug_is_used_for_training_when_present(tmp_path):
    write_voc(tmp_path, IDS, sbd_ids=["2008_000002", "2008_000003", "2008_000004"])
    dm = VOCDataModule(str(tmp_path), num_workers=0)
    train = dm.dataset("train")
    assert len(train) == 3 and (train[0]["mask"] == 7).all()
    assert len(dm.dataset("val")) == 1  # validation stays on the official list
    assert len(VOCDataModule(str(tmp_path), train_set="train").dataset("train")) == 2


def test_config_pipeline_pads_validation_to_multiples_of_32(compose_train, tmp_path):
    write_voc(tmp_path, IDS)
    cfg = compose_train("data=voc", f"data.root={tmp_path}", "data.crop_size=[32,32]")
    dm = instantiate(cfg.data, _convert_="all", num_workers=0)
    val = dm.dataset("val")[0]
    assert val["mask"].shape == (64, 64)  # 40x48 padded to 64x64, padding ignored
    assert (val["mask"][40:] == 255).all() and (val["mask"][:, 48:] == 255).all()
    assert dm.dataset("train")[0]["mask"].shape == (32, 32)


def test_bad_label_files_are_named(tmp_path):
    write_voc(tmp_path, IDS)
    bad = tmp_path / "SegmentationClass" / "2007_000033.png"
    palette_png(np.full((40, 48), 30, np.uint8), bad)
    dm = VOCDataModule(str(tmp_path), num_workers=0)
    with pytest.raises(ValueError, match=rf"{bad} holds label values \[30\] that are not valid"):
        dm.dataset("val")[0]
    Image.new("RGB", (48, 40)).save(bad)
    with pytest.raises(ValueError, match=rf"{bad}: expected a palette or grey 8-bit label PNG"):
        dm.dataset("val")[0]


def test_missing_list_and_missing_files_are_named(tmp_path):
    write_voc(tmp_path, IDS)
    with pytest.raises(FileNotFoundError, match=r"VOC list file .*test.txt does not exist"):
        VOCDataModule(str(tmp_path)).dataset("test")
    (tmp_path / "JPEGImages" / "2007_000039.jpg").unlink()
    with pytest.raises(
        FileNotFoundError, match=r"1 listed files do not exist, first: .*2007_000039.jpg"
    ):
        VOCDataModule(str(tmp_path)).dataset("train")
