"""`python -m segkit.train model=maskrcnn` on synthetic, Cityscapes (instance task) and COCO
data: runs, scores with COCO keys, and writes the exports."""

from __future__ import annotations

import json

from segkit.data.scenes import CLASS_NAMES, SceneSpec
from segkit.data.synthetic_export import export_scenes
from tests.integration.test_train_cli import run_train

TINY_MASKRCNN = [
    "model=maskrcnn",
    "model.net.min_size=64",
    "model.net.max_size=128",
    "model.net.box_head_size=64",
    "model.net.mask_head_channels=16",
    "model.net.box_batch_size_per_image=32",
    "data.batch_size=2",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=2",
    "trainer.num_sanity_val_steps=0",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "scheduler=none",
]


def test_synthetic_instances_train_and_export_coco_results(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_train(
        *TINY_MASKRCNN,
        "data.image_size=64",
        "data.train_size=4",
        "data.val_size=2",
        "data.test_size=2",
        "model.export=[coco]",
        f"hydra.run.dir={run_dir}",
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    expected = {"val/mask_map", "val/mask_map_50", "val/mask_map_75", "val/bbox_map", "val/miou"}
    assert expected <= set(metrics) and "test/mask_map" in metrics
    assert all(0.0 <= metrics[k] <= 1.0 for k in expected)
    assert "val/mask_map" in proc.stdout  # the monitored metric is reported
    results = json.loads((run_dir / "predictions" / "val_coco_results.json").read_text())
    gt = json.loads((run_dir / "predictions" / "val_coco_gt.json").read_text())
    assert len(gt["images"]) == 2 and {c["name"] for c in gt["categories"]} == set(CLASS_NAMES[1:5])
    assert all(r["image_id"] in {1, 2} for r in results)


def test_cityscapes_instances_train_and_export_cityscapes_format(cityscapes_root, tmp_path):
    run_dir = tmp_path / "run"
    run_train(
        *TINY_MASKRCNN,
        "data=cityscapes",
        f"data.root={cityscapes_root}",
        "data.crop_size=[64,64]",
        "data.num_workers=0",
        "model.export=[cityscapes]",
        f"hydra.run.dir={run_dir}",
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert "val/mask_map" in metrics and "test/mask_map" not in metrics  # no labelled test
    txts = sorted((run_dir / "predictions" / "val_cityscapes").glob("*.txt"))
    assert len(txts) == 2  # limit_val_batches=2 at batch 1
    for txt in txts:
        for line in txt.read_text().splitlines():
            png, label_id, _ = line.split()
            assert int(label_id) in {24, 25, 26, 27, 28, 31, 32, 33}
            assert (txt.parent / png).is_file()


def test_coco_instances_train(tmp_path):
    spec = SceneSpec(height=48, width=64, num_classes=5, difficulty=0.3)
    export_scenes("coco", tmp_path / "coco", spec, splits=("train", "val"), num_images=4)
    splits = ",".join(
        f"{s}:{{images:images/{s},annotations:annotations/instances_{s}.json}}"
        for s in ("train", "val")
    )
    run_dir = tmp_path / "run"
    run_train(
        *TINY_MASKRCNN,
        "data=coco_instance",
        f"data.root={tmp_path / 'coco'}",
        f"data.splits={{{splits}}}",
        "data.num_classes=5",
        f"data.class_names=[{','.join(CLASS_NAMES[:5])}]",
        "data.palette=[[0,0,0],[1,1,1],[2,2,2],[3,3,3],[4,4,4]]",
        "data.num_workers=0",
        "model.export=[coco]",
        f"hydra.run.dir={run_dir}",
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"val/mask_map", "val/bbox_map"} <= set(metrics)
    # Exports carry the annotation file's own image and category ids.
    source = json.loads((tmp_path / "coco/annotations/instances_val.json").read_text())
    gt = json.loads((run_dir / "predictions" / "val_coco_gt.json").read_text())
    ids = {(i["id"], i["file_name"].rsplit(".", 1)[0]) for i in source["images"]}
    assert {(i["id"], i["file_name"]) for i in gt["images"]} <= ids
    assert gt["categories"] == [
        {"id": c["id"], "name": c["name"]}
        for c in sorted(source["categories"], key=lambda c: c["id"])
    ]


def test_semantic_only_data_is_refused_for_maskrcnn(tmp_path):
    from tests.unit.test_voc import IDS, write_voc

    write_voc(tmp_path, IDS)
    proc = run_train("model=maskrcnn", "data=voc", f"data.root={tmp_path}", check=False)
    assert proc.returncode == 2
    assert "task='instance': VOCDataModule gives semantic samples" in proc.stderr
