"""ADE20K (ADEChallengeData2016 layout): raw 0 ignored, v -> v - 1, class names as released,
and unpaired or invalid files named."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate
from PIL import Image

from segkit.data.ade20k import read_object_info

OBJECT_INFO = Path(__file__).parents[1] / "fixtures" / "ade20k_objectInfo150.txt"


def write_ade(root, split="training", stems=("ADE_train_00000001", "ADE_train_00000002")):
    images, labels = root / "images" / split, root / "annotations" / split
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    for stem in stems:
        Image.new("RGB", (48, 40), (120, 80, 40)).save(images / f"{stem}.jpg")
        raw = np.zeros((40, 48), np.uint8)  # 0: "other"
        raw[:, 16:32] = 1  # wall
        raw[:, 32:] = 150  # flag
        Image.fromarray(raw).save(labels / f"{stem}.png")
    return root


@pytest.fixture
def ade_module(compose_train, tmp_path):
    def build(*overrides, **kwargs):
        cfg = compose_train("data=ade20k", f"data.root={tmp_path}", *overrides)
        return instantiate(cfg.data, _convert_="all", num_workers=0, **kwargs)

    return build


def test_config_class_names_are_the_releases_first_names(compose_train, tmp_path):
    # tests/fixtures/ade20k_objectInfo150.txt: a verbatim copy of objectInfo150.txt from
    # CSAILVision/sceneparsing (the file shipped in ADEChallengeData2016).
    names = read_object_info(OBJECT_INFO)
    cfg = compose_train("data=ade20k", f"data.root={tmp_path}")
    assert list(cfg.data.class_names) == names
    assert names[0] == "wall" and names[12] == "person" and names[149] == "flag"
    assert len({tuple(c) for c in cfg.data.palette}) == 150


def test_raw_values_map_to_classes_with_other_ignored(ade_module, tmp_path):
    write_ade(tmp_path)
    shutil.copy(OBJECT_INFO, tmp_path / "objectInfo150.txt")  # checked when present
    dm = ade_module(train_transform=None)
    sample = dm.dataset("train")[0]
    mask = sample["mask"]
    assert sample["name"] == "ADE_train_00000001" and sample["image"].shape == (3, 40, 48)
    assert mask[0, 0] == 255 and mask[0, 20] == 0 and mask[0, 40] == 149


def test_training_crop_pads_with_ignore(ade_module, tmp_path):
    write_ade(tmp_path)
    dm = ade_module("data.crop_size=[1056,1056]")  # taller than any scaled image (512 x 0.5..2)
    for index in (0, 1):
        mask = dm.dataset("train")[index]["mask"]
        assert mask.shape == (1056, 1056)
        assert (mask[0] == 255).all() and (mask[-1] == 255).all()  # padded rows: ignored
        assert {0, 149} <= set(mask.unique().tolist()) <= {0, 149, 255}


def test_validation_is_resized_and_padded_to_multiples_of_32(ade_module, tmp_path):
    write_ade(tmp_path, "validation", ["ADE_val_00000001"])
    mask = ade_module().dataset("val")[0]["mask"]
    assert mask.shape == (512, 640)  # 40x48 -> 512x614, padded to 640 wide
    assert (mask[:, 615:] == 255).all()


def test_unpaired_files_and_bad_values_are_named(ade_module, tmp_path):
    write_ade(tmp_path)
    (tmp_path / "annotations" / "training" / "ADE_train_00000002.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"ADE_train_00000002\.jpg"):
        ade_module().dataset("train")

    write_ade(tmp_path)
    raw = np.full((40, 48), 151, np.uint8)
    Image.fromarray(raw).save(tmp_path / "annotations" / "training" / "ADE_train_00000002.png")
    with pytest.raises(ValueError, match=r"ADE_train_00000002\.png holds values \[151\]"):
        ade_module(train_transform=None).dataset("train")[1]


def test_missing_split_and_wrong_class_order_are_refused(ade_module, tmp_path):
    with pytest.raises(FileNotFoundError, match="ADEChallengeData2016 layout"):
        ade_module().dataset("train")
    write_ade(tmp_path)
    info = OBJECT_INFO.read_text().replace("\twall\n", "\twalls\n")
    (tmp_path / "objectInfo150.txt").write_text(info)
    with pytest.raises(ValueError, match=r"differ from .*objectInfo150\.txt"):
        ade_module().dataset("train")
