"""Mask R-CNN task: forward/backward with an empty target, bad targets named, the semantic
view, COCO-standard scores equal to pycocotools' COCOeval on the exported files, exports that
read back, and fine-tuning from a COCO-shaped weights file."""

from __future__ import annotations

import functools
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from segkit.formats.instances import CocoRecorder, write_cityscapes_instances
from segkit.models.maskrcnn import build_maskrcnn
from segkit.models.pretrained import load_pretrained
from segkit.optim import build_optimizer
from segkit.tasks.instance import InstanceSegmentation, check_targets, paint_instances

TINY = {"backbone": "resnet18", "min_size": 64, "max_size": 128, "box_head_size": 64,
        "mask_head_channels": 16, "box_batch_size_per_image": 32, "rpn_proposals_train": 100,
        "anchor_sizes": (8, 16, 32, 64, 128)}  # fmt: skip


def square_target(size=128, boxes=((20, 10, 60, 40),), labels=(2,)):
    masks = torch.zeros(len(boxes), size, size, dtype=torch.uint8)
    for k, (x0, y0, x1, y1) in enumerate(boxes):
        masks[k, y0:y1, x0:x1] = 1
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "labels": torch.tensor(labels, dtype=torch.int64),
        "masks": masks,
    }


def task(**kwargs):
    torch.manual_seed(0)
    net = build_maskrcnn(num_classes=5, **TINY)
    optimizer = functools.partial(build_optimizer, lr=1e-3)
    names = ["background", "disc", "triangle", "ring", "cross"]
    return InstanceSegmentation(net, optimizer, num_classes=5, class_names=names, **kwargs)


def test_forward_backward_with_an_empty_target():
    module = task()
    images = [torch.rand(3, 128, 128), torch.rand(3, 128, 128)]
    targets = [square_target(), square_target(boxes=(), labels=())]
    losses = module.net(images, targets)
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness",
                           "loss_rpn_box_reg"}  # fmt: skip
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    grads = [p.grad for p in module.net.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    module.net.eval()
    with torch.no_grad():
        preds = module(images)
    assert len(preds) == 2 and preds[0]["masks"].dtype == torch.bool
    assert preds[0]["masks"].shape[1:] == (128, 128)


def test_degenerate_boxes_are_dropped_and_counted_bad_targets_named():
    image = torch.rand(3, 128, 128)
    target = square_target(boxes=((20, 10, 60, 40), (5, 5, 5, 30)), labels=(1, 2))
    checked, dropped = check_targets([image], [target], ["a"], num_classes=5)
    assert dropped == 1 and checked[0]["labels"].tolist() == [1]
    with pytest.raises(ValueError, match=r"sample b: masks \(1, 64, 64\) do not match the image"):
        check_targets([image], [square_target(size=64)], ["b"], num_classes=5)
    with pytest.raises(ValueError, match=r"sample c: instance labels \[7\] are outside 1..4"):
        check_targets([image], [square_target(labels=(7,))], ["c"], num_classes=5)
    with pytest.raises(ValueError, match=r"instance labels \[0\]"):
        check_targets([image], [square_target(labels=(0,))], ["d"], num_classes=5)


def test_semantic_view_takes_the_best_scoring_instance():
    masks = torch.zeros(2, 4, 4, dtype=torch.bool)
    masks[0, :, :3] = True
    masks[1, :, 1:] = True
    painted = paint_instances(masks, torch.tensor([1, 2]), torch.tensor([0.9, 0.5]))
    assert painted[0].tolist() == [1, 1, 1, 2]
    painted = paint_instances(masks, torch.tensor([1, 2]), torch.tensor([0.4, 0.5]))
    assert painted[0].tolist() == [1, 2, 2, 2]


def random_predictions(seed=0, images=4, size=48):
    """Ground truth squares and noisy predictions of them, with false positives."""
    gen = torch.Generator().manual_seed(seed)
    preds, targets = [], []
    for _ in range(images):
        boxes, labels = [], []
        for _ in range(int(torch.randint(1, 4, (1,), generator=gen))):
            x0, y0 = (int(v) for v in torch.randint(0, size - 16, (2,), generator=gen))
            w, h = (int(v) for v in torch.randint(6, 16, (2,), generator=gen))
            boxes.append((x0, y0, x0 + w, y0 + h))
            labels.append(int(torch.randint(1, 5, (1,), generator=gen)))
        target = square_target(size, tuple(boxes), tuple(labels))
        shift = torch.randint(-2, 3, (len(boxes), 4), generator=gen)
        pred_boxes = (target["boxes"] + shift).clamp(0, size - 1)
        pred_boxes[:, 2:] = torch.maximum(pred_boxes[:, 2:], pred_boxes[:, :2] + 2)
        extra = torch.tensor([[1.0, 1.0, 12.0, 12.0]])
        all_boxes = torch.cat([pred_boxes, extra])
        pred = square_target(size, tuple(tuple(int(v) for v in b) for b in all_boxes),
                             (*labels, 1))  # fmt: skip
        pred["scores"] = torch.rand(len(all_boxes), generator=gen)
        pred["masks"] = pred["masks"].bool()
        preds.append(pred)
        targets.append({**target, "masks": target["masks"].bool()})
    return preds, targets


def test_mask_ap_equals_cocoeval_on_the_exported_files(tmp_path):

    preds, targets = random_predictions()
    module = task()
    module.maps["val"].update(preds, targets)
    ours = module.maps["val"].compute()
    recorder = CocoRecorder(module.class_names[1:])
    for i, (pred, target) in enumerate(zip(preds, targets, strict=True)):
        recorder.add(f"img{i}", pred, target)
    results, gt = recorder.write(tmp_path, "val")
    for iou_type, key in (("segm", "segm_map"), ("bbox", "bbox_map")):
        stats = cocoeval_stats(gt, results, iou_type)
        assert 0.1 < stats[0] < 0.99  # a non-trivial score
        assert float(ours[key]) == pytest.approx(stats[0], abs=1e-6)
    assert float(ours["segm_map_50"]) == pytest.approx(stats[1], abs=0.2)


def cocoeval_stats(gt_file, results_file, iou_type: str):
    """pycocotools' COCOeval summary (stats[0] = AP, stats[1] = AP50) of two COCO files."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    coco_gt = COCO(str(gt_file))
    evaluation = COCOeval(coco_gt, coco_gt.loadRes(str(results_file)), iou_type)
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    return evaluation.stats


def test_exports_read_back(tmp_path):
    from pycocotools import mask as mask_utils

    preds, targets = random_predictions(images=1)
    recorder = CocoRecorder(["disc", "triangle", "ring", "cross"], category_ids=[3, 5, 7, 9])
    recorder.add("img", preds[0], targets[0], image_id=42)
    results_file, gt_file = recorder.write(tmp_path, "test")
    results = json.loads(results_file.read_text())
    assert {r["image_id"] for r in results} == {42} and len(results) == len(preds[0]["labels"])
    first = results[0]
    assert first["category_id"] == [3, 5, 7, 9][int(preds[0]["labels"][0]) - 1]
    decoded = mask_utils.decode(
        {**first["segmentation"], "counts": first["segmentation"]["counts"].encode()}
    )
    assert np.array_equal(decoded.astype(bool), preds[0]["masks"][0].numpy())
    assert json.loads(gt_file.read_text())["categories"][0] == {"id": 3, "name": "disc"}

    txt = write_cityscapes_instances(
        tmp_path / "cs", "ulm_000000_000019", preds[0], [24, 25, 26, 27]
    )
    lines = txt.read_text().splitlines()
    assert len(lines) == len(preds[0]["labels"])
    png, label_id, score = lines[0].split()
    assert int(label_id) == 23 + int(preds[0]["labels"][0])
    assert float(score) == pytest.approx(float(preds[0]["scores"][0]), abs=1e-6)
    mask = np.asarray(Image.open(tmp_path / "cs" / png))
    assert np.array_equal(mask > 0, preds[0]["masks"][0].numpy())


def test_coco_weights_file_fine_tunes_with_new_predictors(tmp_path):
    coco = build_maskrcnn(num_classes=91, backbone="resnet50", norm="frozen",
                          trainable_backbone_layers=3, min_size=64, max_size=128)  # fmt: skip
    path = tmp_path / "maskrcnn_resnet50_fpn_coco.pth"
    torch.save(coco.state_dict(), path)
    net = build_maskrcnn(num_classes=5, backbone="resnet50", norm="frozen",
                         trainable_backbone_layers=3, min_size=64, max_size=128)  # fmt: skip
    report = load_pretrained(net, path, strict=False, target="net")
    mismatched = {entry.split()[0] for entry in report.mismatched}
    assert mismatched == {
        "roi_heads.box_predictor.cls_score.weight", "roi_heads.box_predictor.cls_score.bias",
        "roi_heads.box_predictor.bbox_pred.weight", "roi_heads.box_predictor.bbox_pred.bias",
        "roi_heads.mask_predictor.mask_fcn_logits.weight",
        "roi_heads.mask_predictor.mask_fcn_logits.bias",
    }  # fmt: skip
    state, loaded = coco.state_dict(), net.state_dict()
    assert torch.equal(
        loaded["backbone.body.layer1.0.conv1.weight"], state["backbone.body.layer1.0.conv1.weight"]
    )
    assert loaded["roi_heads.box_predictor.cls_score.weight"].shape == (5, 1024)
    assert not net.backbone.body.layer1[0].conv1.weight.requires_grad  # 3 trainable stages
    assert net.backbone.body.layer2[0].conv1.weight.requires_grad


def test_coco_ids_come_with_the_batch(tmp_path):
    # COCO-file samples carry their image id and the file's category ids: exports use them.
    module = task(export=["coco"]).eval()
    batch = {
        "image": [torch.rand(3, 128, 128), torch.rand(3, 128, 128)],
        "target": [square_target(), square_target(boxes=((5, 5, 30, 30),), labels=(1,))],
        "name": ["a", "b"],
        "image_id": [17, 42],
        "category_ids": [[3, 5, 7, 9], [3, 5, 7, 9]],
    }
    with torch.no_grad():
        outputs = module.validation_step(batch, 0)
    trainer = SimpleNamespace(sanity_checking=False, is_global_zero=True, default_root_dir=tmp_path)
    (export,) = module.configure_callbacks()  # the task adds its export callback itself
    export.on_validation_batch_end(trainer, module, outputs, batch, 0)
    export.on_validation_epoch_end(trainer, module)
    gt_file = tmp_path / "predictions" / "val_coco_gt.json"
    gt = json.loads(gt_file.read_text())
    assert [i["id"] for i in gt["images"]] == [17, 42]
    assert [c["id"] for c in gt["categories"]] == [3, 5, 7, 9]
    assert sorted(a["category_id"] for a in gt["annotations"]) == [3, 5]  # labels 1 and 2
    with pytest.raises(ValueError, match=r"export formats \['json'\] are unknown"):
        task(export=["json"])
    with pytest.raises(ValueError, match=r"export=cityscapes needs cityscapes_label_ids"):
        task(export=["cityscapes"])
