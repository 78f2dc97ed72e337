"""W&B offline runs, resume into the same W&B run, multirun and Optuna sweeps, and
`segkit.compare` on the runs they leave, all through `python -m segkit.train`."""

from __future__ import annotations

import io
import json
import os
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


PLANTED = """# @package _global_
test: false
callbacks:
  slim_checkpoints:
    keep_last: false
sweep:
  study_name: segkit
  n_trials: 3
  sampler: {_target_: optuna.samplers.RandomSampler, seed: 0}
  pruner: {_target_: optuna.pruners.MedianPruner, n_startup_trials: 1, n_warmup_steps: 0}
  params:
    optimizer.lr: choice(0.003, 1000000.0)
"""


def test_optuna_sweep_prunes_a_bad_trial_and_resumes_after_a_kill(tmp_path):
    """Three trials on optuna >= 4: a planted bad trial (lr 1e6: its loss explodes) is pruned
    at its first validation, a sweep killed during a trial continues where it stopped (that
    trial runs again, with its parameters), and the best trial is recorded."""
    import signal
    import time

    import optuna

    conf = tmp_path / "conf" / "hparams_search"
    conf.mkdir(parents=True)
    (conf / "planted.yaml").write_text(PLANTED)
    sweep_dir = tmp_path / "sweep"
    command = [
        sys.executable, "-m", "segkit.train", "-m", "hparams_search=planted",
        f"hydra.searchpath=[file://{tmp_path / 'conf'}]", f"hydra.sweep.dir={sweep_dir}",
        *TINY_OVERRIDES, "trainer.max_epochs=3", "logger=csv",
        "monitor=val/loss", "monitor_mode=min", "trainer.on_nonfinite=skip",
    ]  # fmt: skip
    sweep_dir.mkdir()
    storage = f"sqlite:///{sweep_dir / 'optuna.db'}"
    study = optuna.create_study(study_name="segkit", storage=storage, direction="minimize")
    for lr in (0.003, 0.003):
        study.enqueue_trial({"optimizer.lr": lr})
    first = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 300
    while not list(sweep_dir.glob("1_*.log")) and time.time() < deadline:
        time.sleep(0.5)
    time.sleep(3)  # trial 1 is training
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    study.enqueue_trial({"optimizer.lr": 1e6})  # the planted bad trial
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "segkit: trial 1 was interrupted: it runs again" in resumed.stderr

    trials = optuna.load_study(study_name="segkit", storage=storage).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "PRUNED", "COMPLETE"]
    assert trials[3].params == trials[1].params and trials[3].user_attrs["retry_of"] == 1
    assert trials[2].params == {"optimizer.lr": 1e6}
    pruned = json.loads((sweep_dir / "2_unet_synthetic" / "pruned.json").read_text())
    assert pruned["step"] == 2  # stopped at its first validation, of 6 training steps
    steps = [int(r["step"]) for r in csv_rows(sweep_dir / "0_unet_synthetic")]
    assert max(steps) >= 5  # a kept trial trained all 3 epochs
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    values = [t.value for t in trials if t.state.name == "COMPLETE"]
    assert results["best_value"] == min(values) and results["trials"]["PRUNED"] == 1
    # Trials keep best.ckpt only, without optimizer state; the killed trial's dir is kept.
    kept = sorted(p.name for p in (sweep_dir / "0_unet_synthetic" / "checkpoints").iterdir())
    assert kept == ["best.ckpt"] and (sweep_dir / "1_unet_synthetic").is_dir()


def csv_rows(run_dir: Path) -> list[dict]:
    import csv

    with open(run_dir / "csv" / "metrics.csv") as f:
        return list(csv.DictReader(f))
