"""SYNTHIA-RAND-CITYSCAPES read from its released format: 16-bit label PNGs decoded to the
16 classes it shares with Cityscapes, the held-out frames, and refused trees and files."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest
from PIL import Image

from segkit.data.bad_samples import BadSampleError
from segkit.data.synthia import SYNTHIA_CLASSES, SynthiaDataModule


def test_synthia_decodes_its_16_bit_labels_to_the_16_shared_classes(synthia_root):
    dm = SynthiaDataModule(str(synthia_root), val_size=2, num_workers=0)
    train, val = dm.dataset("train"), dm.dataset("val")
    assert (len(train), len(val)) == (4, 2)  # the last 2 frames by name are held out
    assert val.dataset.names == ["0000004", "0000005"]
    sample = train[1]
    assert sample["image"].shape == (3, 64, 128) and sample["mask"].shape == (64, 128)
    mask = sample["mask"].numpy()
    assert mask[45, 60] == SYNTHIA_CLASSES.index("road") == 0  # SYNTHIA id 3
    assert mask[5, 60] == SYNTHIA_CLASSES.index("sky") == 9  # id 1
    assert mask[35, 20] == SYNTHIA_CLASSES.index("car") == 12  # id 8 (instance 301 ignored)
    assert (mask[50:52] == 255).all()  # id 22, lane marking: not scored
    assert dm.num_classes == 16 and dm.palette[12] == [0, 0, 142]  # Cityscapes' car colour
    # Why OpenCV: Pillow reads the 48-bit PNG as 8-bit RGB, keeping each value's high byte.
    with Image.open(synthia_root / "GT" / "LABELS" / "0000001.png") as pil:
        assert pil.mode == "RGB" and np.asarray(pil)[..., 0].max() == 0


def test_synthia_refuses_unknown_ids_8_bit_labels_missing_files_and_wrong_facts(
    synthia_root, tmp_path
):
    root = tmp_path / "synthia"
    shutil.copytree(synthia_root, root)
    label = root / "GT" / "LABELS" / "0000002.png"
    ids = cv2.imread(str(label), cv2.IMREAD_UNCHANGED)
    ids[0, 0, 2] = 40  # no SYNTHIA class
    cv2.imwrite(str(label), ids)
    train = SynthiaDataModule(str(root), val_size=2).dataset("train")
    with pytest.raises(ValueError, match=r"0000002.png holds class ids \[40\].*expected 0..22"):
        train[2]
    Image.fromarray(np.full((64, 128), 3, dtype=np.uint8)).save(label)  # 8-bit grey
    with pytest.raises(ValueError, match=r"0000002.png is a uint8 image with 1 channel"):
        train[2]
    label.write_bytes(b"not a png")
    with pytest.raises(BadSampleError, match=r"cannot read .*0000002.png"):
        train[2]
    label.unlink()
    with pytest.raises(FileNotFoundError, match=r"1 of 6 SYNTHIA images have no label file"):
        SynthiaDataModule(str(root), val_size=2).dataset("train")
    with pytest.raises(ValueError, match=r"holds 6 SYNTHIA frames: too few"):
        SynthiaDataModule(str(synthia_root), val_size=6).dataset("val")
    with pytest.raises(FileNotFoundError, match=r"SYNTHIA folder .*RGB does not exist"):
        SynthiaDataModule(str(tmp_path / "nowhere")).dataset("train")
    with pytest.raises(ValueError, match=r"16 classes"):
        SynthiaDataModule(str(synthia_root), num_classes=19)
