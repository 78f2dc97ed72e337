"""Plain images/ + masks/ folders: the three mask formats, the three split sources, and
unmatched or undecodable files named in errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image

from segkit.data.folder import FolderDataModule

PALETTE = [[0, 0, 0], [128, 64, 128], [0, 0, 142]]


def write_folder(root, names, subfolder="", mask_format="index", size=(40, 32)):
    images, masks = root / "images" / subfolder, root / "masks" / subfolder
    images.mkdir(parents=True, exist_ok=True)
    masks.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.new("RGB", size, (90, 90, 90)).save(images / f"{name}.jpg")
        labels = np.zeros((size[1], size[0]), np.uint8)
        labels[:, 20:] = 1
        labels[20:, :10] = 2
        labels[0, 0] = 255
        if mask_format == "rgb":
            colours = np.array([*PALETTE, *[[255, 255, 255]] * 253], np.uint8)
            Image.fromarray(colours[labels]).save(masks / f"{name}.png")
        elif mask_format == "binary":
            Image.fromarray(np.where(labels == 1, 255, 0).astype(np.uint8)).save(
                masks / f"{name}.png"
            )
        else:
            Image.fromarray(labels).save(masks / f"{name}.png")


def module(root, **kwargs):
    args = {
        "num_classes": 3,
        "class_names": ["bg", "road", "car"],
        "palette": PALETTE,
        "num_workers": 0,
    }
    return FolderDataModule(str(root), **{**args, **kwargs})


@pytest.mark.parametrize("mask_format", ["index", "rgb"])
def test_index_and_rgb_masks_decode_to_the_same_classes(tmp_path, mask_format):
    write_folder(tmp_path, ["a", "b", "c", "d", "e"], mask_format=mask_format)
    dm = module(tmp_path, mask_format=mask_format, ignore_color=[255, 255, 255])
    mask = dm.dataset("train")[0]["mask"]
    assert mask.dtype == torch.int64 and mask.shape == (32, 40)
    assert (mask[5, 25], mask[25, 5], mask[5, 5], mask[0, 0]) == (1, 2, 0, 255)


def test_binary_masks_map_255_to_foreground(tmp_path):
    write_folder(tmp_path, ["a", "b", "c"], mask_format="binary")
    dm = module(
        tmp_path, mask_format="binary", num_classes=2, class_names=["bg", "fg"], palette=PALETTE[:2]
    )
    mask = dm.dataset("train")[0]["mask"]
    assert set(mask.unique().tolist()) == {0, 1} and mask[5, 25] == 1


def test_split_from_subfolders(tmp_path):
    write_folder(tmp_path, ["a", "b", "c"], "train")
    write_folder(tmp_path, ["v"], "val")
    dm = module(tmp_path)
    assert dm.split_mode() == "subfolders"
    assert [s["name"] for s in dm.dataset("val")] == ["v"] and len(dm.dataset("train")) == 3


def test_split_from_lists(tmp_path):
    write_folder(tmp_path, ["a", "b", "c", "d"])
    (tmp_path / "train.txt").write_text("a\nb.jpg\nc\n")
    (tmp_path / "val.txt").write_text("d\n")
    dm = module(tmp_path)
    assert dm.split_mode() == "lists"
    assert [p[0].stem for p in dm.split_pairs("train")] == ["a", "b", "c"]
    (tmp_path / "val.txt").write_text("zz\n")
    with pytest.raises(
        FileNotFoundError, match=r"val.txt lists 1 names with no image/mask pair, first: zz"
    ):
        module(tmp_path).split_pairs("val")


def test_seeded_fraction_split_is_disjoint_and_repeatable(tmp_path):
    write_folder(tmp_path, [f"img{i:02d}" for i in range(10)])
    dm = module(tmp_path, val_fraction=0.3, split_seed=7)
    train = {p[0].stem for p in dm.split_pairs("train")}
    val = {p[0].stem for p in dm.split_pairs("val")}
    assert len(val) == 3 and len(train) == 7 and not train & val
    assert val == {
        p[0].stem for p in module(tmp_path, val_fraction=0.3, split_seed=7).split_pairs("val")
    }
    assert val != {
        p[0].stem for p in module(tmp_path, val_fraction=0.3, split_seed=8).split_pairs("val")
    }


def test_unmatched_files_are_named(tmp_path):
    write_folder(tmp_path, ["a", "b", "c"])
    (tmp_path / "masks" / "b.png").unlink()
    with pytest.raises(
        FileNotFoundError, match=r"1 images have no mask of the same name, first: .*b.jpg"
    ):
        module(tmp_path).dataset("train")
    (tmp_path / "images" / "b.jpg").unlink()
    (tmp_path / "masks" / "z.png").write_bytes(b"")
    with pytest.raises(
        FileNotFoundError, match=r"1 masks have no image of the same name, first: .*z.png"
    ):
        module(tmp_path).dataset("train")


def test_unknown_index_value_is_named(tmp_path):
    write_folder(tmp_path, ["a", "b"])
    bad = tmp_path / "masks" / "a.png"
    Image.fromarray(np.full((32, 40), 7, np.uint8)).save(bad)
    dm = module(tmp_path, val_fraction=0.5)
    dataset = dm.dataset("train") if bad in dm.dataset("train").masks else dm.dataset("val")
    with pytest.raises(ValueError, match=rf"{bad} holds label values \[7\] that are not valid"):
        dataset[dataset.masks.index(bad)]


def test_unknown_rgb_colour_is_named(tmp_path):
    write_folder(tmp_path, ["a", "b"], mask_format="rgb")
    bad = tmp_path / "masks" / "a.png"
    Image.new("RGB", (40, 32), (1, 2, 3)).save(bad)
    dm = module(tmp_path, mask_format="rgb", val_fraction=0.5)
    dataset = dm.dataset("train") if bad in dm.dataset("train").masks else dm.dataset("val")
    with pytest.raises(ValueError, match=rf"{bad} holds colours \[\[1, 2, 3\]\] that are not in"):
        dataset[dataset.masks.index(bad)]


def test_config_composes_and_trains_a_batch(compose_train, tmp_path):
    write_folder(tmp_path, ["a", "b", "c", "d", "e"])
    cfg = compose_train(
        "data=folder",
        f"data.root={tmp_path}",
        "data.num_classes=3",
        "data.class_names=[bg,road,car]",
        f"data.palette={PALETTE}",
        "data.crop_size=[32,32]",
    )
    dm = instantiate(cfg.data, _convert_="all", num_workers=0, batch_size=2)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (2, 3, 32, 32) and batch["mask"].shape == (2, 32, 32)
    assert dm.dataset("val")[0]["mask"].shape == (32, 64)  # 32x40 padded to multiples of 32
