"""`python -m segkit.data.check`: reads every sample once, reports counts, sizes, class
frequencies and each problem by file; exit status 1 when there is a problem."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from PIL import Image

from tests.unit.test_voc import IDS, write_voc


def run_check(*args):
    return subprocess.run(
        [sys.executable, "-m", "segkit.data.check", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_check_reports_counts_sizes_frequencies_and_classes_without_pixels(tmp_path):
    write_voc(tmp_path, IDS)
    proc = run_check("data=voc", f"data.root={tmp_path}")
    out = proc.stdout
    assert "[train] 2 samples read, 1 problems" in out and "[val] 1 samples read" in out
    assert "size 48x40: 2" in out
    # 20x20 person pixels minus the 20-pixel border row, of 48x40 = 1920 pixels.
    assert f"person               {380 / 1920:8.4%}" in out
    # These two images hold background and people only: 19 classes have no training pixel.
    assert "PROBLEM: no training pixel belongs to 19 of the classes: aeroplane, bicycle" in out
    assert proc.returncode == 1 and out.rstrip().endswith("1 problems found")


def test_black_and_white_masks_read_as_indices_are_refused_with_the_hint(tmp_path):
    """0/255 masks under mask_format=index: 255 is "ignore", so no pixel would be
    foreground. segkit check and training both say so, naming data.mask_format=binary."""
    from tests.unit.test_folder import write_folder

    write_folder(tmp_path, ["a", "b", "c", "d", "e"], mask_format="binary")
    folder = ["data=folder", f"data.root={tmp_path}", "data.num_classes=2",
              "data.class_names=[bg,fg]", "data.palette=[[0,0,0],[255,255,255]]"]  # fmt: skip
    proc = run_check(*folder)
    hint = "with data.mask_format=index, 255 is the ignore index"
    assert proc.returncode == 1 and f"PROBLEM: the training masks hold only 0 and 255: {hint}" in (
        proc.stdout
    )
    assert "set data.mask_format=binary" in proc.stdout
    train = subprocess.run(
        [sys.executable, "-m", "segkit.train", *folder, f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    error = [line for line in train.stderr.splitlines() if line.startswith("segkit:")]
    assert train.returncode == 2 and len(error) == 1  # one line, before any training
    assert hint in error[0] and "set data.mask_format=binary" in error[0]
    assert not (tmp_path / "run").exists()  # the run never started: no folder left


def test_problems_are_listed_by_file_and_fail_the_check(tmp_path):
    write_voc(tmp_path, IDS)
    bad = tmp_path / "SegmentationClass" / "2007_000039.png"
    Image.fromarray(np.full((40, 48), 40, np.uint8), mode="L").save(bad)
    (tmp_path / "JPEGImages" / "2007_000033.jpg").write_bytes(b"truncated")
    # The check reports every bad file even when training would skip them.
    proc = run_check("data=voc", f"data.root={tmp_path}", "data.on_bad_sample=skip")
    assert proc.returncode == 1
    assert f"PROBLEM: {bad} holds label values [40] that are not valid here" in proc.stdout
    assert "PROBLEM: no training pixel belongs to 19 of the classes: aeroplane," in proc.stdout
    assert "2007_000033.jpg" in proc.stdout and "3 problems found" in proc.stdout


def test_bad_config_is_one_line(tmp_path):
    proc = run_check("data=voc")
    assert proc.returncode == 2
    assert "segkit: config error: data.root is required" in proc.stderr


def test_instance_data_reports_instances_per_class(tmp_path):
    from segkit.data.scenes import CLASS_NAMES, SceneSpec, render_scene, split_seed
    from segkit.data.synthetic_export import export_scenes

    spec = SceneSpec(height=48, width=64, num_classes=5, difficulty=0.3)
    export_scenes("coco", tmp_path, spec, splits=("train", "val"), num_images=3)
    splits = ",".join(
        f"{s}:{{images:images/{s},annotations:annotations/instances_{s}.json}}"
        for s in ("train", "val")
    )
    proc = run_check(
        "data=coco_instance",
        f"data.root={tmp_path}",
        f"data.splits={{{splits}}}",
        "data.num_classes=5",
        f"data.class_names=[{','.join(CLASS_NAMES[:5])}]",
        "data.palette=[[0,0,0],[1,1,1],[2,2,2],[3,3,3],[4,4,4]]",
    )
    assert proc.returncode == 0, proc.stderr
    labels = np.concatenate(
        [render_scene(spec, split_seed(0, "train"), i).labels for i in range(3)]
    )
    disc = int((labels == 1).sum())
    assert "[train] 3 samples read, 0 problems" in proc.stdout and "size 64x48: 3" in proc.stdout
    assert f"  disc                 {disc:8d}" in proc.stdout
