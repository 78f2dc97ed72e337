"""The exporter writes scenes in the exact real layouts, and they read back to the same scenes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from segkit.data.scenes import SceneSpec, render_scene, split_seed
from segkit.data.synthetic_export import CITYSCAPES_LABEL_IDS, export_scenes, main

SPEC = SceneSpec(height=64, width=96)


def _scene(split, i):
    return render_scene(SPEC, split_seed(0, split), i)


def test_cityscapes_layout_label_and_instance_ids(tmp_path):
    export_scenes("cityscapes", tmp_path, SPEC, splits=("train", "val"), num_images=3)
    images = sorted((tmp_path / "leftImg8bit" / "val").glob("*/*_leftImg8bit.png"))
    assert [p.parent.name for p in images] == ["frankfurt", "frankfurt", "lindau"]
    for i, image_path in enumerate(sorted(images, key=lambda p: p.name.split("_")[1])):
        stem = image_path.name.removesuffix("_leftImg8bit.png")
        city = image_path.parent.name
        assert stem.startswith(f"{city}_{i:06d}_")
        gt = tmp_path / "gtFine" / "val" / city
        scene = _scene("val", i)
        assert np.array_equal(np.array(Image.open(image_path)), scene.image)
        label_ids = np.array(Image.open(gt / f"{stem}_gtFine_labelIds.png"))
        assert np.array_equal(label_ids, np.array(CITYSCAPES_LABEL_IDS, np.uint8)[scene.mask])
        instance_ids = np.array(Image.open(gt / f"{stem}_gtFine_instanceIds.png"))
        assert Image.open(gt / f"{stem}_gtFine_instanceIds.png").mode == "I;16"  # 16-bit
        # Official encoding: each thing instance is labelId * 1000 + k.
        things = np.unique(instance_ids[instance_ids >= 1000])
        assert len(things) == len(scene.labels)
        for k, (m, label) in enumerate(zip(scene.instance_masks, scene.labels, strict=True)):
            assert np.array_equal(instance_ids == CITYSCAPES_LABEL_IDS[label] * 1000 + k, m)
        assert (gt / f"{stem}_gtFine_color.png").is_file()


def test_folder_layout_index_pngs(tmp_path):
    export_scenes("folder", tmp_path, SPEC, splits=("train",), num_images=2)
    for i in range(2):
        mask = Image.open(tmp_path / "masks" / "train" / f"train_{i:06d}.png")
        assert mask.mode == "P"  # an index PNG with a palette, as VOC masks are
        assert np.array_equal(np.array(mask), _scene("train", i).mask)
        assert (tmp_path / "images" / "train" / f"train_{i:06d}.png").is_file()


@pytest.mark.parametrize("encoding", ["rle", "polygon"])
def test_coco_json_reads_back_with_pycocotools(tmp_path, encoding):
    from pycocotools.coco import COCO

    export_scenes("coco", tmp_path, SPEC, splits=("val",), num_images=4, coco_masks=encoding)
    coco = COCO(str(tmp_path / "annotations" / "instances_val.json"))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == [
        "disc",
        "triangle",
        "ring",
        "cross",
    ]
    for image_id in coco.getImgIds():
        info = coco.loadImgs(image_id)[0]
        assert (tmp_path / "images" / "val" / info["file_name"]).is_file()
        scene = _scene("val", image_id - 1)
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
        assert all(a["iscrowd"] == 0 for a in anns)
        if encoding == "rle":  # exact
            assert len(anns) == len(scene.labels)
            for ann, m, label in zip(anns, scene.instance_masks, scene.labels, strict=True):
                assert ann["category_id"] == label
                assert np.array_equal(coco.annToMask(ann).astype(bool), m)
                x, y, w, h = ann["bbox"]
                ys, xs = np.nonzero(m)
                assert (x, y, x + w, y + h) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        else:  # polygons approximate each visible mask
            kinds = {type(a["segmentation"]).__name__ for a in anns}
            assert kinds <= {"list", "dict"}
            for ann in anns:
                if isinstance(ann["segmentation"], dict):  # RLE fallback: exact
                    assert any(
                        np.array_equal(coco.annToMask(ann).astype(bool), m)
                        for m in scene.instance_masks
                    )
                    continue
                # Polygons run through boundary pixel centres: the rasterised polygon stays
                # within one pixel of the mask, and drops at most a few one-pixel spurs.
                poly = coco.annToMask(ann).astype(bool)
                same = [
                    m
                    for m, lab in zip(scene.instance_masks, scene.labels, strict=True)
                    if lab == ann["category_id"]
                ]
                assert any(_traces(poly, m) for m in same)


def _traces(poly: np.ndarray, mask: np.ndarray) -> bool:
    import cv2

    grow = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    grow_poly = cv2.dilate(poly.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    extra = (poly & ~grow).sum()
    missing = (mask & ~grow_poly).sum()
    return extra == 0 and missing <= 0.03 * mask.sum()


def test_export_refuses_a_non_empty_directory_and_bad_format(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="is not empty"):
        export_scenes("folder", tmp_path, SPEC)
    assert (tmp_path / "keep.txt").read_text() == "mine"
    with pytest.raises(ValueError, match="format 'voc' is unknown"):
        export_scenes("voc", tmp_path / "new", SPEC)


def test_cli_exports(tmp_path, capsys):
    out = tmp_path / "coco"
    assert (
        main(
            [
                "export",
                "--format",
                "coco",
                str(out),
                "--num-images",
                "2",
                "--image-size",
                "64",
                "--splits",
                "train",
            ]
        )
        == 0
    )
    data = json.loads((out / "annotations" / "instances_train.json").read_text())
    assert len(data["images"]) == 2
    assert "wrote 3 files" in capsys.readouterr().out
