"""W&B offline runs, resume into the same W&B run, multirun and Optuna sweeps, and
`segkit.compare` on the runs they leave, all through `python -m segkit.train`."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from tests.conftest import TINY_OVERRIDES
from tests.integration.test_train_cli import run_train as run_cli
from tests.integration.wandb_offline import read_records, read_run

CLASSES = ["background", "disc", "triangle", "ring", "cross"]


def run_train(*args: str, env: dict | None = None, multirun=False) -> subprocess.CompletedProcess:
    """A tiny `python -m segkit.train` run (a multirun with ``-m``) that must succeed."""
    return run_cli(*(["-m"] if multirun else []), *TINY_OVERRIDES, *args, env=env)


def offline_runs(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))


def test_default_logger_writes_an_offline_wandb_run_and_resume_continues_it(tmp_path):
    # A machine without credentials and without WANDB_MODE: the default decides offline.
    env = {k: v for k, v in os.environ.items() if k not in ("WANDB_MODE", "WANDB_API_KEY")}
    env["HOME"] = str(tmp_path)  # no ~/.netrc
    run_dir = tmp_path / "run"
    # No scheduler: OneCycle's length is fixed by the first run, which resuming must extend.
    proc = run_train(
        "seed=3",
        "scheduler=none",
        "trainer.max_epochs=2",
        "trainer.log_every_n_steps=1",
        f"hydra.run.dir={run_dir}",
        env=env,
    )

    (run_file,) = offline_runs(run_dir)
    assert f"upload it with:\n  wandb sync {run_file.parent}" in proc.stdout
    assert "no W&B credentials" in proc.stdout
    run = read_run(run_file)
    assert run.name == "unet_synthetic_seed3"
    assert run.tags == ["model=unet", "data=synthetic", "loss=ce", "method=supervised", "seed=3"]
    assert run.summaries["val/miou"] == "max"
    # the full resolved config, including the run id that resuming reads back
    assert run.config["model"]["_target_"] == "segkit.tasks.semantic.SemanticSegmentation"
    assert run.config["data"]["class_names"] == CLASSES
    assert run.config["logger"]["wandb"]["id"] == run.run_id
    saved = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())
    assert saved["logger"]["wandb"]["id"] == run.run_id

    keys = {k for row in run.history for k in row}
    for key in ("train/loss", "val/loss", "val/miou", "val/acc", "time/epoch_s", "test/miou"):
        assert key in keys, key
    assert {f"val/iou/{c}" for c in CLASSES} <= keys
    # one panel of 4 fixed validation images per training epoch, with both masks
    panels = [row for row in run.history if row.get("val/examples/_type")]
    assert len(panels) == 2
    for row in panels:
        assert row["val/examples/_type"] == "images/separated"
        assert row["val/examples/count"] == 4
        assert row["val/examples/height"] == row["val/examples/width"] == 64
        masks = row["val/examples/all_masks"]
        assert len(masks) == 4 and all(set(m) == {"ground_truth", "prediction"} for m in masks)
    labels = run.config["_wandb"]["mask/class_labels"]
    ground_truth = labels["val/examples_wandb_delimeter_ground_truth"]["value"]
    assert ground_truth == {**{str(i): c for i, c in enumerate(CLASSES)}, "255": "ignore"}
    media = run_file.parent / "files" / "media"
    assert len(list((media / "images").glob("val/examples_*.png"))) == 8
    # after training: confusion matrix and per-class IoU table of the best checkpoint
    for stage in ("val", "test"):
        row = next(r for r in run.history if f"{stage}/confusion_matrix/_type" in r)
        assert row[f"{stage}/confusion_matrix/_type"] == "image-file"
        table_row = next(r for r in run.history if f"{stage}/per_class_iou/_type" in r)
        assert table_row[f"{stage}/per_class_iou/nrows"] == len(CLASSES)
        table = json.loads(
            (run_file.parent / "files" / table_row[f"{stage}/per_class_iou/path"]).read_text()
        )
        assert table["columns"] == ["class", "iou", "target_pixels"]
        metrics = json.loads((run_dir / "metrics.json").read_text())
        for name, iou, _ in table["data"]:  # float64 there, float32 in metrics.json
            expected = metrics[f"{stage}/iou/{name}"]
            assert iou is None if expected is None else iou == pytest.approx(expected, rel=1e-6)

    # Resuming from the run's checkpoint (in another dir) continues the same W&B run.
    resumed_dir = tmp_path / "resumed"
    run_train(
        "seed=3",
        "scheduler=none",
        "trainer.max_epochs=3",
        "logger.wandb.log_model=true",  # offline: kept for `wandb sync` to upload
        f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}",
        f"hydra.run.dir={resumed_dir}",
        env=env,
    )
    (resumed_file,) = offline_runs(resumed_dir)
    resumed = read_run(resumed_file)
    assert resumed.run_id == run.run_id
    models = [r.artifact for r in read_records(resumed_file) if r.HasField("artifact")]
    models = [a for a in models if a.type == "model"]
    assert {a.name for a in models} == {f"model-{run.run_id}"}
    assert {alias for a in models for alias in a.aliases} >= {"best", "latest"}
    assert all([e.path for e in a.manifest.contents] == ["model.ckpt"] for a in models)
    epochs = {row["epoch"] for row in resumed.history if "val/miou" in row and "epoch" in row}
    assert 2 in epochs  # it trained on from epoch 2


def test_tensorboard_logger_writes_event_files(tmp_path):
    run_dir = tmp_path / "run"
    run_train("logger=tensorboard", f"hydra.run.dir={run_dir}")
    tags, images = set(), {}
    for path in (run_dir / "tensorboard").glob("events.out.tfevents.*"):
        for event in read_tfrecords(path):
            for value in event.summary.value:
                tags.add(value.tag)
                if value.HasField("image"):
                    images[value.tag] = Image.open(io.BytesIO(value.image.encoded_image_string))
    assert {"val/miou", "val/loss", "test/miou", "time/epoch_s"} <= tags
    # the run dir's pictures, as TensorBoard images
    assert set(images) == {"val/samples", "val/confusion_matrix", "test/confusion_matrix"}
    (grid,) = sorted((run_dir / "samples").glob("epoch_*.png"))
    assert np.array_equal(np.asarray(images["val/samples"]), np.asarray(Image.open(grid)))
    confusion = Image.open(run_dir / "confusion_matrix.png").convert("RGB")
    assert np.array_equal(np.asarray(images["val/confusion_matrix"]), np.asarray(confusion))
    assert (run_dir / "csv" / "metrics.csv").is_file()
    assert not (run_dir / "wandb").exists()


def read_tfrecords(path: Path):
    """Events of a TensorBoard file (TFRecord: length, CRC, Event protobuf, CRC)."""
    from tensorboardX.proto.event_pb2 import Event

    data, pos = path.read_bytes(), 0
    while pos + 12 <= len(data):
        (length,) = struct.unpack("<Q", data[pos : pos + 8])
        event = Event()
        event.ParseFromString(data[pos + 12 : pos + 12 + length])
        pos += 12 + length + 4
        yield event


def test_multirun_jobs_share_a_wandb_group_and_compare_ranks_them(tmp_path):
    sweep_dir = tmp_path / "multirun" / "2026-11-22" / "09-00-00"
    run_train("seed=1,2", f"hydra.sweep.dir={sweep_dir}", multirun=True)
    jobs = sorted(p for p in sweep_dir.iterdir() if p.is_dir())
    assert [p.name for p in jobs] == ["0_unet_synthetic", "1_unet_synthetic"]
    runs = [read_run(offline_runs(job)[0]) for job in jobs]
    assert {r.group for r in runs} == {"sweep-2026-11-22_09-00-00"}
    assert [r.name for r in runs] == ["unet_synthetic_seed1-0", "unet_synthetic_seed2-1"]
    assert runs[0].run_id != runs[1].run_id

    proc = subprocess.run(
        [sys.executable, "-m", "segkit.compare", str(sweep_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = sweep_dir / "comparison"
    header, *rows = (out / "leaderboard.csv").read_text().splitlines()
    assert header == "run,seed,best val/miou,test/miou,epochs,epoch s,samples"
    best = {job.name: json.loads((job / "metrics.json").read_text())["val/miou"] for job in jobs}
    assert sorted(r.split(",")[0] for r in rows) == sorted(best)
    for row in rows:  # each job's latest sample grid (it trained one epoch)
        name, grid = row.split(",")[0], row.split(",")[-1]
        assert grid == str(sweep_dir / name / "samples" / "epoch_000.png")
    assert rows[0].split(",")[0] == max(best, key=best.get)
    for png in ("curves.png", "per_class_iou.png"):
        assert (out / png).stat().st_size > 5000


def test_optuna_sweep_records_the_best_trial_and_can_be_continued(tmp_path):
    sweep_dir = tmp_path / "sweep"
    args = ("hparams_search=optuna", f"hydra.sweep.dir={sweep_dir}", "logger=csv")
    run_train(*args, "hydra.sweeper.n_trials=2")
    jobs = sorted(p for p in sweep_dir.iterdir() if p.is_dir())
    assert len(jobs) == 2
    values = [json.loads((job / "metrics.json").read_text())["val/miou"] for job in jobs]
    assert not any("test/miou" in (job / "metrics.json").read_text() for job in jobs)
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert results["best_value"] == max(values)
    assert set(results["best_params"]) == {"optimizer.lr", "optimizer.weight_decay", "loss"}
    assert 1e-4 <= results["best_params"]["optimizer.lr"] <= 1e-2

    # Same sweep dir: the study continues in optuna.db; earlier trials' dirs are kept.
    run_train(*args, "hydra.sweeper.n_trials=1")
    with sqlite3.connect(sweep_dir / "optuna.db") as db:
        states = [s for (s,) in db.execute("select state from trials")]
    assert states == ["COMPLETE"] * 3
    assert len([p for p in sweep_dir.iterdir() if p.is_dir()]) == 3
    assert all((job / "metrics.json").is_file() for job in jobs)
