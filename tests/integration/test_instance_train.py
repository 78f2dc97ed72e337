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


def sparse_category_ids(root, ids: dict[int, int]) -> None:
    """Renumber the categories of an exported COCO tree (1..K) to sparse ids, as COCO's own
    1..90 with gaps."""
    for path in (root / "annotations").glob("*.json"):
        doc = json.loads(path.read_text())
        for entry in doc["categories"]:
            entry["id"] = ids[entry["id"]]
        for entry in doc["annotations"]:
            entry["category_id"] = ids[entry["category_id"]]
        path.write_text(json.dumps(doc))


def test_coco_instances_train_and_predictions_keep_the_files_ids(tmp_path, capsys):
    """Sparse category ids (3, 17, 44, 60) travel through training into the checkpoint:
    `segkit.predict` names them, and its JSON scores on the annotation file exactly as the
    evaluation-time export does."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from segkit.predict import predict
    from segkit.run.compose import compose_config

    spec = SceneSpec(height=48, width=64, num_classes=5, difficulty=0.3)
    export_scenes("coco", tmp_path / "coco", spec, splits=("train", "val"), num_images=4)
    sparse = {1: 3, 2: 17, 3: 44, 4: 60}
    sparse_category_ids(tmp_path / "coco", sparse)
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
        "trainer.limit_val_batches=1.0",  # every val image: the export covers what predict does
        "trainer.precision=32-true",  # as predict below, whatever `auto` is on this CPU
        f"hydra.run.dir={run_dir}",
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"val/mask_map", "val/bbox_map"} <= set(metrics)
    # Exports carry the annotation file's own image and category ids.
    annotations = tmp_path / "coco/annotations/instances_val.json"
    source = json.loads(annotations.read_text())
    gt = json.loads((run_dir / "predictions" / "val_coco_gt.json").read_text())
    ids = {(i["id"], i["file_name"].rsplit(".", 1)[0]) for i in source["images"]}
    assert {(i["id"], i["file_name"]) for i in gt["images"]} <= ids
    assert gt["categories"] == [
        {"id": c["id"], "name": c["name"]}
        for c in sorted(source["categories"], key=lambda c: c["id"])
    ]

    out = tmp_path / "predicted"
    predict(compose_config("predict", [
        f"ckpt_path={run_dir / 'checkpoints' / 'best.ckpt'}",
        f"input={tmp_path / 'coco/images/val'}", f"output={out}", "format=coco",
        "score_threshold=0.0", "device=cpu", "precision=32-true",
    ]))  # fmt: skip
    results = json.loads((out / "coco_results.json").read_text())
    assert results and {r["category_id"] for r in results} <= set(sparse.values())
    # Image ids of the annotation file, by file name, then COCOeval on that file.
    file_ids = {i["file_name"]: i["id"] for i in source["images"]}
    ours = {
        i["id"]: file_ids[i["file_name"]]
        for i in json.loads((out / "coco_images.json").read_text())["images"]
    }
    for r in results:
        r["image_id"] = ours[r["image_id"]]
    exported = json.loads((run_dir / "predictions" / "val_coco_results.json").read_text())

    def mask_ap(detections: list[dict]) -> float:
        truth = COCO(str(annotations))
        evaluator = COCOeval(truth, truth.loadRes(detections), "segm")
        for step in (evaluator.evaluate, evaluator.accumulate, evaluator.summarize):
            step()
        return evaluator.stats[0]

    # The same detections as the evaluation-time export, category ids included (a model
    # this short-trained scores AP 0, so AP alone would not tell them apart).
    def key(r: dict) -> tuple:
        return r["image_id"], -round(r["score"], 4), r["category_id"]

    ours, theirs = sorted(results, key=key), sorted(exported, key=key)
    assert len(ours) == len(theirs) > 0
    for a, b in zip(ours, theirs, strict=True):
        assert (a["image_id"], a["category_id"]) == (b["image_id"], b["category_id"])
        assert abs(a["score"] - b["score"]) < 1e-4
        assert all(abs(p - q) < 0.05 for p, q in zip(a["bbox"], b["bbox"], strict=True))
    assert mask_ap(results) == mask_ap(exported)

    # A checkpoint written before the ids were recorded still loads, with a note, and names
    # the internal labels 1..K.
    import torch

    import segkit
    from segkit.run.checkpoints import CONFIG_KEY

    checkpoint = torch.load(run_dir / "checkpoints" / "best.ckpt", weights_only=True)
    del checkpoint[CONFIG_KEY]["data"]["category_ids"]
    torch.save(checkpoint, tmp_path / "old.ckpt")
    model = segkit.load(tmp_path / "old.ckpt", device="cpu", precision="32-true")
    assert "records no COCO category ids" in capsys.readouterr().err
    found = model.predict(tmp_path / "coco/images/val" / source["images"][0]["file_name"], 0.0)
    assert found and {r["category_id"] for r in found} <= {1, 2, 3, 4}


def test_semantic_only_data_is_refused_for_maskrcnn(tmp_path):
    from tests.unit.test_voc import IDS, write_voc

    write_voc(tmp_path, IDS)
    proc = run_train("model=maskrcnn", "data=voc", f"data.root={tmp_path}", check=False)
    assert proc.returncode == 2
    assert "task='instance': VOCDataModule gives semantic samples" in proc.stderr
