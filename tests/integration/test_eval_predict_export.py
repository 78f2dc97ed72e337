"""`segkit.eval`, `segkit.predict` and `segkit.export` on checkpoints of short training runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from segkit.data.cityscapes_labels import TRAIN_LABELS
from tests.conftest import TINY_OVERRIDES
from tests.integration.test_train_cli import run_train


def run_module(module: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=600
    )
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """A finished U-Net run on the synthetic data (5 classes, 64x64)."""
    run_dir = tmp_path_factory.mktemp("trained") / "run"
    run_train(*TINY_OVERRIDES, f"hydra.run.dir={run_dir}")
    return run_dir


def test_eval_from_the_checkpoint_alone_reproduces_the_run(trained_run, tmp_path):
    run_dir = tmp_path / "copy"
    shutil.copytree(trained_run, run_dir)
    shutil.rmtree(run_dir / ".hydra")  # no config files: everything comes from the checkpoint
    ckpt = run_dir / "checkpoints" / "best.ckpt"
    trained = json.loads((trained_run / "metrics.json").read_text())
    for split in ("val", "test"):
        run_module("segkit.eval", f"ckpt_path={ckpt}", f"split={split}")
        evaluated = json.loads(
            (run_dir / "eval" / split / "best-whole" / "metrics.json").read_text()
        )
        assert {f"{split}/miou", f"{split}/acc", f"{split}/loss"} <= set(evaluated)
        for key, value in evaluated.items():
            assert value == pytest.approx(trained[key], abs=1e-6), key


def test_eval_refuses_a_dataset_with_another_class_count(trained_run):
    ckpt = trained_run / "checkpoints" / "best.ckpt"
    proc = run_module("segkit.eval", f"ckpt_path={ckpt}", "+data.num_classes=7", check=False)
    assert proc.returncode == 2
    assert "the model predicts 5 classes" in proc.stderr and "the data has 7" in proc.stderr


class Exploit:
    """Unpickling this runs a shell command: what a malicious checkpoint would carry."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_checkpoint_with_a_pickled_callable_is_refused(tmp_path):
    evil, marker = tmp_path / "evil.ckpt", tmp_path / "code-ran"
    torch.save({"state_dict": {}, "segkit_config": {}, "payload": Exploit(marker)}, evil)
    proc = run_module("segkit.eval", f"ckpt_path={evil}", check=False)
    assert proc.returncode == 2
    assert f"{evil}: refused: it holds pickled Python objects" in proc.stderr
    assert not marker.exists()


def write_images(directory: Path) -> dict[str, tuple[int, int]]:
    """Images of sizes the network was not trained on, one in a subfolder."""
    rng = np.random.default_rng(0)
    sizes = {"a.png": (70, 90), "sub/b.jpg": (64, 64), "c.png": (70, 90)}
    for name, (h, w) in sizes.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(directory / name)
    return sizes


@pytest.mark.parametrize("fmt", ["index", "color", "overlay"])
def test_predict_writes_one_file_per_image_in_each_format(trained_run, tmp_path, fmt):
    sizes = write_images(tmp_path / "images")
    out = tmp_path / "out"
    ckpt = trained_run / "checkpoints" / "best.ckpt"
    args = [f"ckpt_path={ckpt}", f"input={tmp_path / 'images'}", f"output={out}", f"format={fmt}"]
    run_module("segkit.predict", *args, "batch_size=2")
    for name, (h, w) in sizes.items():
        image = Image.open(out / Path(name).with_suffix(".png"))
        assert image.size == (w, h)
        if fmt == "index":
            assert np.asarray(image).max() < 5
        elif fmt == "color":
            assert image.mode == "P" and image.getpalette()[3:6] == [230, 25, 75]  # disc
        else:
            assert image.mode == "RGB"


def test_predict_index_maps_equal_the_models_argmax(trained_run, tmp_path):
    from segkit.data.transforms import to_sample
    from segkit.run.from_checkpoint import load_task

    write_images(tmp_path / "images")
    ckpt = trained_run / "checkpoints" / "best.ckpt"
    out = tmp_path / "out"
    run_module(
        "segkit.predict", f"ckpt_path={ckpt}", f"input={tmp_path / 'images' / 'sub'}",
        f"output={out}", "format=index", "precision=32-true",
    )  # fmt: skip
    # fp32 on both sides: the maps are equal. Mixed-precision predictions agree with fp32 up to
    # near-tied pixels (tests/integration/test_precision_matrix.py), whatever `auto` means here.
    task, _ = load_task(ckpt)  # fp32, NCHW
    rgb = np.asarray(Image.open(tmp_path / "images" / "sub" / "b.jpg").convert("RGB"))
    with torch.no_grad():
        expected = task(to_sample(rgb, rgb[..., 0], "b")["image"][None]).argmax(1)[0]
    assert np.array_equal(np.asarray(Image.open(out / "b.png")), expected.numpy())


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_runs_like_pytorch(trained_run, tmp_path, fmt):
    from segkit.export import run_exported
    from segkit.run.from_checkpoint import load_task

    ckpt = trained_run / "checkpoints" / "best.ckpt"
    path = tmp_path / f"net.{fmt}"
    run_module("segkit.export", f"ckpt_path={ckpt}", f"format={fmt}", f"output={path}")
    task, _ = load_task(ckpt)  # fp32, NCHW
    images = torch.randn(3, 3, 96, 160)  # not the traced size: height and width are dynamic
    with torch.no_grad():
        expected = task(images)
    got = run_exported(path, fmt, images)
    assert got.shape == expected.shape == (3, 5, 96, 160)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    assert (got.argmax(1) == expected.argmax(1)).float().mean() > 0.999


def test_official_cityscapes_evaluation_equals_segkits_miou(cityscapes_root, tmp_path):
    run_dir = tmp_path / "run"
    run_train(
        *("data=cityscapes", f"data.root={cityscapes_root}", "data.crop_size=[64,64]"),
        *("data.image_size=[64,128]", "data.batch_size=2", "data.num_workers=0"),
        *("trainer.max_steps=6", "trainer.enable_progress_bar=false", "test=false"),
        f"hydra.run.dir={run_dir}",
    )
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    run_module("segkit.eval", f"ckpt_path={ckpt}", "evaluator=cityscapes_official")
    metrics = json.loads((run_dir / "eval" / "val" / "last-whole" / "metrics.json").read_text())
    assert metrics["official/miou"] == pytest.approx(metrics["val/miou"], abs=1e-6)
    for label in TRAIN_LABELS:  # per class too (None: absent from prediction and truth)
        name = label.name.replace(" ", "_")
        ours, official = metrics[f"val/iou/{name}"], metrics[f"official/iou/{name}"]
        assert (ours is None) == (official is None), label.name
        if ours is not None:
            assert official == pytest.approx(ours, abs=1e-6), label.name
    written = sorted((run_dir / "eval/val/last-whole/pred_labelIds").glob("*_pred_labelIds.png"))
    assert len(written) == 4
    label_ids = np.unique(np.concatenate([np.unique(np.asarray(Image.open(p))) for p in written]))
    assert set(label_ids.tolist()) <= {lb.id for lb in TRAIN_LABELS}


def test_instance_checkpoint_evaluates_and_predicts_coco_results(tmp_path):
    from tests.integration.test_instance_train import TINY_MASKRCNN

    run_dir = tmp_path / "run"
    data = ["data.image_size=64", "data.train_size=4", "data.val_size=2", "data.test_size=2"]
    run_train(*TINY_MASKRCNN, *data, f"hydra.run.dir={run_dir}")
    ckpt = run_dir / "checkpoints" / "best.ckpt"
    run_module("segkit.eval", f"ckpt_path={ckpt}")
    trained = json.loads((run_dir / "metrics.json").read_text())
    evaluated = json.loads((run_dir / "eval" / "val" / "best-whole" / "metrics.json").read_text())
    for key in ("val/mask_map", "val/bbox_map", "val/mask_map_50"):
        assert evaluated[key] == pytest.approx(trained[key], abs=1e-6), key

    sizes = write_images(tmp_path / "images")
    out = tmp_path / "out"
    run_module(
        "segkit.predict", f"ckpt_path={ckpt}", f"input={tmp_path / 'images'}",
        f"output={out}", "format=coco", "score_threshold=0.0",
    )  # fmt: skip
    listing = json.loads((out / "coco_images.json").read_text())
    assert sorted(i["file_name"] for i in listing["images"]) == sorted(sizes)
    assert [c["name"] for c in listing["categories"]] == ["disc", "triangle", "ring", "cross"]
    ids = {i["id"]: (i["height"], i["width"]) for i in listing["images"]}
    for result in json.loads((out / "coco_results.json").read_text()):
        assert result["image_id"] in ids and 1 <= result["category_id"] <= 4
        assert list(result["segmentation"]["size"]) == list(ids[result["image_id"]])
    for name, (h, w) in sizes.items():
        assert Image.open(out / Path(name).with_suffix(".png")).size == (w, h)
    proc = run_module("segkit.predict", f"ckpt_path={ckpt}", f"input={tmp_path}", f"output={out}",
                      "format=color", check=False)  # fmt: skip
    assert proc.returncode == 2 and "a instance model" not in proc.stderr
    assert "format=color: an instance model writes coco" in proc.stderr
