"""GTA5 read from its released format: labelIds mapped to Cityscapes' trainIds, the held-out
frames, and refused trees and files."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from segkit.data.gta5 import GTA5DataModule


def test_gta5_maps_label_ids_to_cityscapes_train_ids(gta5_root):
    dm = GTA5DataModule(str(gta5_root), val_size=2, num_workers=0)
    train, val = dm.dataset("train"), dm.dataset("val")
    assert (len(train), len(val)) == (4, 2)  # the last 2 frames by name are held out
    assert val.dataset.names == ["00005", "00006"]
    sample = train[0]
    assert sample["image"].shape == (3, 64, 128) and sample["mask"].shape == (64, 128)
    mask = sample["mask"].numpy()
    assert mask[40, 60] == 0  # labelId 7, road -> trainId 0
    assert mask[5, 60] == 10  # labelId 23, sky -> 10
    assert mask[35, 20] == 13  # labelId 26, car -> 13
    assert mask[0, 0] == 255  # 34 is no labelId: ignored
    assert dm.class_names[13] == "car" and dm.num_classes == 19


def test_gta5_refuses_a_missing_label_a_size_mismatch_and_too_few_frames(gta5_root, tmp_path):
    root = tmp_path / "gta5"
    shutil.copytree(gta5_root, root)
    (root / "labels" / "00003.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 of 6 GTA5 images have no label file.*00003"):
        GTA5DataModule(str(root), val_size=2).dataset("train")
    Image.fromarray(np.zeros((32, 32), dtype=np.uint8), mode="P").save(root / "labels/00003.png")
    train = GTA5DataModule(str(root), val_size=2).dataset("train")
    with pytest.raises(ValueError, match=r"labels/00003.png is 32x32 but its image .*is 128x64"):
        train[2]
    with pytest.raises(ValueError, match=r"holds 6 GTA5 frames: too few"):
        GTA5DataModule(str(root), val_size=6).dataset("val")
    with pytest.raises(FileNotFoundError, match=r"GTA5 folder .*images does not exist"):
        GTA5DataModule(str(tmp_path)).dataset("train")
    with pytest.raises(ValueError, match=r"19 classes"):
        GTA5DataModule(str(root), num_classes=16)
