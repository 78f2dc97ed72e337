"""COCO-format instance data: polygons and RLE read back through pycocotools, category ids
remapped to 1..K with names kept, crowd regions kept and flagged, bad files named, and mask/box
AP equal to pycocotools' COCOeval on the annotation file itself, crowd regions included."""

from __future__ import annotations

import json

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image
from torch.utils.data import DataLoader

from segkit.data.coco import CocoInstanceDataModule, CocoInstances
from segkit.data.scenes import CLASS_NAMES, SceneSpec, render_scene, split_seed
from segkit.data.synthetic_export import export_scenes

SPEC = SceneSpec(height=48, width=64, num_classes=5, difficulty=0.3)
SPLITS = {
    split: {"images": f"images/{split}", "annotations": f"annotations/instances_{split}.json"}
    for split in ("train", "val")
}


def synthetic_coco(root, masks="rle"):
    export_scenes("coco", root, SPEC, splits=("train", "val"), num_images=3, coco_masks=masks)
    return root


def module(root, **kwargs):
    args = {
        "num_classes": 5,
        "class_names": CLASS_NAMES[:5],
        "palette": [[0, 0, 0]] * 5,
        "splits": SPLITS,
        "num_workers": 0,
    }
    return CocoInstanceDataModule(str(root), **{**args, **kwargs})


@pytest.mark.parametrize("masks_format", ["rle", "polygon"])
def test_exported_scenes_read_back_as_their_instances(tmp_path, masks_format):
    dm = module(synthetic_coco(tmp_path, masks_format))
    dataset = dm.dataset("train")
    for index in range(3):
        scene = render_scene(SPEC, split_seed(0, "train"), index)
        target = dataset[index]["target"]
        assert target["labels"].tolist() == scene.labels.tolist()
        masks, expected = target["masks"].bool(), torch.from_numpy(scene.instance_masks)
        if masks_format == "rle":  # lossless
            assert torch.equal(masks, expected)
        else:  # polygons are rasterised again (their fidelity: test_synthetic_export)
            inter = (masks[:, None] & expected[None]).sum((2, 3))
            union = (masks[:, None] | expected[None]).sum((2, 3))
            iou = inter / union  # [decoded, expected]: each instance overlaps itself best
            assert torch.equal(iou.argmax(1), torch.arange(len(masks))), iou
        for mask, box in zip(target["masks"], target["boxes"], strict=True):
            ys, xs = torch.nonzero(mask, as_tuple=True)
            assert box.tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        assert dataset[index]["image"].shape == (3, 48, 64)


def write_coco(root, annotations, categories, size=(20, 10)):
    (root / "images").mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size).save(root / "images" / "a.jpg")
    Image.new("RGB", size).save(root / "images" / "empty.jpg")
    images = [
        {"id": 1, "file_name": "a.jpg", "width": 20, "height": 10},
        {"id": 2, "file_name": "empty.jpg", "width": 20, "height": 10},
    ]
    path = root / "ann.json"
    document = {"images": images, "annotations": annotations, "categories": categories}
    path.write_text(json.dumps(document))
    return path


def polygon(ann_id, category, x0, y0, x1, y1, crowd=0):
    box = [x0, y0, x1 - x0, y1 - y0]
    poly = [[x0, y0, x1, y0, x1, y1, x0, y1]]
    return {"id": ann_id, "image_id": 1, "category_id": category, "segmentation": poly,
            "area": 1.0, "bbox": box, "iscrowd": crowd}  # fmt: skip


def test_category_ids_become_contiguous_labels_and_crowds_are_flagged(tmp_path):
    categories = [{"id": 90, "name": "toothbrush"}, {"id": 3, "name": "car"}]
    crowd = {
        "id": 3, "image_id": 1, "category_id": 3, "iscrowd": 1, "area": 4.0,
        "bbox": [0, 0, 2, 2], "segmentation": {"counts": [0, 4, 196], "size": [10, 20]},
    }  # fmt: skip
    anns = [polygon(1, 90, 2, 2, 6, 6), polygon(2, 3, 10, 0, 14, 8), crowd]
    dataset = CocoInstances(tmp_path / "images", write_coco(tmp_path, anns, categories))
    assert dataset.category_names == ["car", "toothbrush"]  # id order: 3, 90
    target = dataset[0]["target"]
    assert target["labels"].tolist() == [2, 1, 1]  # toothbrush (90) -> 2, car (3) -> 1
    assert target["masks"].shape == (3, 10, 20)
    assert target["masks"][0, 3, 3] == 1 and target["masks"][1, 4, 12] == 1
    # The crowd region is kept, flagged, with the file's area (COCOeval's area ranges use it).
    assert target["iscrowd"].tolist() == [0, 0, 1] and target["area"].tolist() == [1, 1, 4]
    assert target["masks"][2, :4, 0].all() and target["masks"][2].sum() == 4  # RLE: column-major
    empty = dataset[1]  # an image without annotations trains with an empty target
    assert empty["target"]["boxes"].shape == (0, 4) and empty["target"]["masks"].shape[0] == 0
    # COCO's own ids travel with the sample (exports and COCOeval use them).
    assert dataset[0]["image_id"] == 1 and dataset[0]["category_ids"] == [3, 90]


def test_training_leaves_crowd_regions_out():
    from segkit.tasks.instance import without_crowds

    target = {
        "boxes": torch.tensor([[0.0, 0, 2, 2], [1, 1, 4, 4]]),
        "labels": torch.tensor([1, 2]),
        "masks": torch.ones(2, 4, 4, dtype=torch.uint8),
        "iscrowd": torch.tensor([1, 0]),
        "area": torch.tensor([4.0, 9.0]),
    }
    plain = without_crowds(target)
    assert set(plain) == {"boxes", "labels", "masks"} and plain["labels"].tolist() == [2]


class FixedDetections(torch.nn.Module):
    """A "model that detects objects": per image (by call order), the given detections, with
    masks as probabilities [K,1,H,W] as torchvision's Mask R-CNN returns them."""

    def __init__(self, detections):
        super().__init__()
        self.detections, self.calls = detections, 0

    def forward(self, images, targets=None):
        out = []
        for _ in images:
            d = self.detections[self.calls]
            self.calls += 1
            out.append({**d, "masks": d["masks"].float()[:, None]})
        return out


def test_mask_and_box_ap_equal_cocoeval_on_the_annotation_file_with_crowds(tmp_path):
    import functools

    from pycocotools import mask as mask_utils

    from segkit.data.instances import instance_collate
    from segkit.models.maskrcnn import build_maskrcnn  # noqa: F401  (the task's usual net)
    from segkit.optim import build_optimizer
    from segkit.tasks.instance import InstanceSegmentation
    from tests.unit.test_instance_task import cocoeval_stats

    gen = torch.Generator().manual_seed(0)
    height, width, images, annotations, detections = 40, 48, [], [], []
    (tmp_path / "images").mkdir()
    for image_id in (7, 11, 23):  # COCO ids with gaps, as in the real files
        Image.new("RGB", (width, height)).save(tmp_path / "images" / f"{image_id}.png")
        images.append(
            {"id": image_id, "file_name": f"{image_id}.png", "height": height, "width": width}
        )
        found = {"boxes": [], "labels": [], "scores": [], "masks": []}
        for k in range(4):  # 3 objects and 1 crowd region per image
            x0, y0 = (
                int(torch.randint(0, 30, (1,), generator=gen)),
                int(torch.randint(0, 24, (1,), generator=gen)),
            )
            w, h = 6 + k * 2, 5 + k * 2
            mask = torch.zeros(height, width, dtype=torch.bool)
            mask[y0 : y0 + h, x0 : x0 + w] = True
            crowd = int(k == 3)
            rle = mask_utils.encode(mask.numpy().astype("uint8", order="F"))
            rle["counts"] = rle["counts"].decode()
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": (3, 90)[k % 2], "segmentation": rle,
                                "area": float(mask.sum()), "bbox": [x0, y0, w, h],
                                "iscrowd": crowd})  # fmt: skip
            # Detections: a shifted copy of each object (and of the crowd region, which
            # COCOeval must not count as a false positive), plus one miss elsewhere.
            shifted = torch.roll(mask, shifts=(int(k % 2), 1), dims=(0, 1))
            ys, xs = torch.nonzero(shifted, as_tuple=True)
            found["boxes"].append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            found["labels"].append(1 + (k % 2 == 1) * 1 if k != 2 else 1)
            found["scores"].append(float(torch.rand(1, generator=gen)) * 0.5 + 0.5)
            found["masks"].append(shifted)
        detections.append({
            "boxes": torch.tensor(found["boxes"], dtype=torch.float32),
            "labels": torch.tensor(found["labels"]),
            "scores": torch.tensor(found["scores"]),
            "masks": torch.stack(found["masks"]),
        })  # fmt: skip
    categories = [{"id": 3, "name": "car"}, {"id": 90, "name": "toothbrush"}]
    ann_file = tmp_path / "ann.json"
    ann_file.write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories})
    )

    dataset = CocoInstances(tmp_path / "images", ann_file)
    task = InstanceSegmentation(
        FixedDetections(detections), functools.partial(build_optimizer, lr=1e-3), num_classes=3,
        class_names=["background", "car", "toothbrush"], export=["coco"], semantic_view=False,
    )  # fmt: skip
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path)  # fmt: skip
    loader = DataLoader(dataset, batch_size=1, collate_fn=instance_collate)
    (ours,) = trainer.validate(task, loader, verbose=False)
    results = tmp_path / "predictions" / "val_coco_results.json"  # the task's export callback
    for iou_type, key in (("segm", "val/mask_map"), ("bbox", "val/bbox_map")):
        stats = cocoeval_stats(ann_file, results, iou_type)  # the file itself, not an export
        assert 0.05 < stats[0] < 0.95  # a non-trivial score
        assert ours[key] == pytest.approx(stats[0], abs=1e-3)
        assert ours[f"{key}_50"] == pytest.approx(stats[1], abs=1e-3)


def test_bad_files_are_named(tmp_path):
    categories = [{"id": 1, "name": "car"}]
    path = write_coco(tmp_path, [polygon(1, 7, 0, 0, 2, 2)], categories)
    with pytest.raises(ValueError, match=r"annotation 1 has category_id 7"):
        CocoInstances(tmp_path / "images", path)

    path = write_coco(tmp_path, [], categories)
    (tmp_path / "images" / "empty.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 images listed in .*ann\.json .*empty\.jpg"):
        CocoInstances(tmp_path / "images", path)

    write_coco(tmp_path, [], categories, size=(21, 10))
    with pytest.raises(ValueError, match=r"a\.jpg is 21x10 but .*ann\.json says 20x10"):
        CocoInstances(tmp_path / "images", path)[0]

    (tmp_path / "broken.json").write_text('{"images": [')
    with pytest.raises(ValueError, match=r"broken\.json is not a COCO instances file"):
        CocoInstances(tmp_path / "images", tmp_path / "broken.json")
    with pytest.raises(FileNotFoundError, match=r"nope\.json does not exist"):
        CocoInstances(tmp_path / "images", tmp_path / "nope.json")


def test_class_names_must_match_the_categories(tmp_path):
    dm = module(synthetic_coco(tmp_path), class_names=["background", "a", "b", "c", "d"])
    with pytest.raises(ValueError, match=r"has categories \['disc', 'triangle'"):
        dm.dataset("train")


def test_config_flips_instances_and_collates_lists(compose_train, tmp_path):
    synthetic_coco(tmp_path)
    cfg = compose_train(
        "data=coco_instance",
        f"data.root={tmp_path}",
        f"data.splits={json.dumps(SPLITS).replace(chr(34), '')}",
        "data.num_classes=5",
        f"data.class_names=[{','.join(CLASS_NAMES[:5])}]",
        "data.palette=[[0,0,0],[1,1,1],[2,2,2],[3,3,3],[4,4,4]]",
    )
    dm = instantiate(cfg.data, _convert_="all", num_workers=0, batch_size=3)
    dm.setup("fit")
    torch.manual_seed(0)
    batch = next(iter(dm.train_dataloader()))
    assert len(batch["image"]) == 3 and isinstance(batch["target"], list)
    for name, image, target in zip(batch["name"], batch["image"], batch["target"], strict=True):
        index = dm.dataset("train").names.index(name)
        masks = torch.from_numpy(render_scene(SPEC, split_seed(0, "train"), index).instance_masks)
        flipped = torch.equal(target["masks"].bool(), masks.flip(-1))
        assert flipped or torch.equal(target["masks"].bool(), masks)  # boxes follow the masks
        assert image.shape == (3, 48, 64) and image.min() >= 0.0 and image.max() <= 1.0
    assert dm.dataset("val").transform is None
