"""Reliability promises of `python -m segkit.train` (docs/reliability.md): resume after
SIGKILL and SIGTERM equal to an uninterrupted run, non-finite losses, a full disk, corrupt
files, run dir safety and determinism with loader workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from segkit.run.checkpoints import CONFIG_KEY
from tests.conftest import TINY_OVERRIDES
from tests.integration.test_train_cli import run_train
from tests.integration.wandb_offline import read_run

REPO = Path(__file__).resolve().parents[2]
# 3 epochs of 2 steps; deterministic kernels, so runs compare bitwise.
RUN = [
    *TINY_OVERRIDES,
    "trainer.max_epochs=3",
    "trainer.deterministic=true",
    "test=false",
]
CALLBACKS = "tests.integration.kill_at_step"


def train(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`python -m segkit.train` with this repo importable (the test callbacks live in it)."""
    return run_train(*args, cwd=cwd, env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def assert_same_run(resumed: Path, uninterrupted: Path) -> None:
    a, b = weights(resumed), weights(uninterrupted)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "weights differ"
    metrics = [json.loads((d / "metrics.json").read_text()) for d in (resumed, uninterrupted)]
    assert metrics[0] == metrics[1]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("reliability") / "uninterrupted"
    ok(train(*RUN, "logger=csv", f"hydra.run.dir={run_dir}"))
    return run_dir


def test_sigkill_between_checkpoints_then_resume_equals_an_uninterrupted_run(
    tmp_path, uninterrupted
):
    run_dir = tmp_path / "run"
    killer = [f"+callbacks.kill._target_={CALLBACKS}.SignalAtStep", "+callbacks.kill.step=5"]
    proc = train(*RUN, *killer, "+callbacks.kill.signal_name=SIGKILL", f"hydra.run.dir={run_dir}")
    assert proc.returncode == -9  # killed in epoch 2, after the checkpoint of epoch 1
    stored = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert stored["global_step"] == 4

    ok(train(f"resume={run_dir}"))
    assert_same_run(run_dir, uninterrupted)
    # the same W&B run and CSV log, continued
    (first, second) = sorted((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert first.name == second.name == f"run-{stored[CONFIG_KEY]['logger']['wandb']['id']}.wandb"
    assert read_run(second).run_id == read_run(first).run_id
    epochs = [line.split(",")[0] for line in (run_dir / "csv" / "metrics.csv").read_text().split()]
    assert {"0", "1", "2"} <= set(epochs[1:])


def test_sigterm_saves_the_current_step_exits_143_and_resumes_exactly(tmp_path, uninterrupted):
    run_dir = tmp_path / "run"
    stopper = [f"+callbacks.stop._target_={CALLBACKS}.SignalAtStep", "+callbacks.stop.step=3"]
    proc = train(*RUN, *stopper, "+callbacks.stop.signal_name=SIGTERM", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 143
    assert f"segkit: stopped by SIGTERM at step 3; saved {run_dir}/checkpoints/last.ckpt" in (
        proc.stderr
    )
    assert f"python -m segkit.train resume={run_dir}" in proc.stderr
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 3

    ok(train(f"resume={run_dir}"))  # mid-epoch: the epoch's remaining batches, in order
    assert_same_run(run_dir, uninterrupted)


#: 2 gloo processes, 12 training images of batch 2: 3 steps per rank and epoch, 2 epochs.
DDP_RUN = [
    *RUN,
    "trainer=ddp_cpu",
    "trainer.max_epochs=2",
    "data.train_size=12",
    "data.batch_size=2",
    "trainer.limit_train_batches=1.0",
    "logger=csv",
]


def test_ddp_sigterm_mid_epoch_resumes_exactly_on_every_rank(tmp_path):
    """Each rank skips its own finished batches: the resumed run ends with the weights and
    metrics of one that never stopped (without the skip, ranks replay the epoch's start)."""
    reference = tmp_path / "uninterrupted"
    ok(train(*DDP_RUN, f"hydra.run.dir={reference}"))
    run_dir = tmp_path / "run"
    stopper = [f"+callbacks.stop._target_={CALLBACKS}.SignalAtStep", "+callbacks.stop.step=4"]
    proc = train(
        *DDP_RUN, *stopper, "+callbacks.stop.signal_name=SIGTERM", f"hydra.run.dir={run_dir}"
    )
    assert proc.returncode == 143, proc.stderr[-3000:]
    saved = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    # The signal comes after step 4's agreement between the ranks (callbacks run in order):
    # both ranks stop together after step 5, two batches into the second epoch.
    assert saved["global_step"] == 5

    ok(train(f"resume={run_dir}"))
    assert_same_run(run_dir, reference)


def test_ckpt_path_last_needs_a_run_dir_that_has_one(tmp_path, uninterrupted):
    proc = train(*RUN, "ckpt_path=last", f"hydra.run.dir={tmp_path / 'new'}")
    assert proc.returncode == 2
    assert "ckpt_path=last: no " in proc.stderr and "resume=RUN_DIR" in proc.stderr


def test_nonfinite_loss_stops_naming_step_and_parts_and_keeps_the_last_good_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    nan = [f"+callbacks.nan._target_={CALLBACKS}.NanBatches", "+callbacks.nan.batches=[3]"]
    proc = train(*RUN, "loss=ce_dice", *nan, f"hydra.run.dir={run_dir}")
    assert proc.returncode == 1
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("segkit:")]
    assert line.startswith(
        "segkit: training stopped: non-finite loss at step 3 (epoch 1, batch 1): loss=nan; "
        "parts: train/loss/ce=nan, train/loss/dice=nan."
    )
    assert "Traceback" not in proc.stderr
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 2  # the end of epoch 0, before the NaN
    assert all(
        torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point()
    )


def test_on_nonfinite_skip_skips_and_counts(tmp_path):
    run_dir = tmp_path / "run"
    nan = [f"+callbacks.nan._target_={CALLBACKS}.NanBatches", "+callbacks.nan.batches=[1,4]"]
    proc = ok(train(*RUN, *nan, "trainer.on_nonfinite=skip", f"hydra.run.dir={run_dir}"))
    assert "segkit: skipped 2 training batches with a non-finite loss" in proc.stdout
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 6  # skipped batches count as steps; the weights do not move
    # the NaN batches' forward passes left no NaN in the normalisation statistics
    assert all(
        torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point()
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert np.isfinite(metrics["val/miou"])
    rows = (run_dir / "csv" / "metrics.csv").read_text()
    assert "train/nonfinite_skips" in rows.splitlines()[0]


def test_full_disk_while_saving_fails_clearly_and_keeps_earlier_checkpoints(tmp_path):
    run_dir = tmp_path / "run"
    full = [f"+callbacks.full._target_={CALLBACKS}.DiskFullAfterStep", "+callbacks.full.step=3"]
    proc = train(*RUN, "logger=csv", *full, f"hydra.run.dir={run_dir}")
    assert proc.returncode == 1
    assert "segkit: training stopped: No space left on device" in proc.stderr
    assert "checkpoints saved before are intact" in proc.stderr
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 2  # the whole checkpoint of epoch 0, not a torn one
    assert not list((run_dir / "checkpoints").glob("*.tmp*"))


def test_a_run_never_reuses_another_runs_dir(tmp_path, uninterrupted):
    before = (uninterrupted / ".hydra" / "config.yaml").read_text()
    proc = train(*RUN, f"hydra.run.dir={uninterrupted}")
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"segkit: hydra.run.dir={uninterrupted} already holds a run: continue it with "
        f"resume={uninterrupted}, empty it with overwrite=true, or give a new directory"
    )
    assert (uninterrupted / ".hydra" / "config.yaml").read_text() == before


def test_an_unwritable_output_dir_is_refused_before_anything_runs(tmp_path):
    blocker = tmp_path / "a_file"  # a path below a file can never be created (even by root)
    blocker.write_text("")
    proc = train(*RUN, f"hydra.run.dir={blocker / 'run'}")
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"segkit: cannot write the run dir {blocker / 'run'}: {blocker} is not a writable directory"
    )


# Loader workers: in `make test-all` (two runs with worker processes take a minute on 2 cores).
@pytest.mark.parametrize("workers", [0, pytest.param(2, marks=pytest.mark.slow)])
def test_same_seed_same_metrics_with_loader_workers(tmp_path, workers, request):
    runs = [tmp_path / f"run{i}" for i in (1, 2)]
    if workers == 0:  # the module's uninterrupted run is the first (the same command)
        runs[0] = request.getfixturevalue("uninterrupted")
    for run_dir in runs:
        if not run_dir.exists():
            command = [*RUN, "logger=csv", f"data.num_workers={workers}"]
            ok(train(*command, f"hydra.run.dir={run_dir}"))
    assert_same_run(*runs)


def write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def corrupt_folder(root: Path) -> list[str]:
    """A folder dataset (12 train, 2 val images) with three bad training samples."""
    rng = np.random.default_rng(0)
    for split, count in (("train", 12), ("val", 2)):
        for i in range(count):
            write_png(
                root / "images" / split / f"{i}.png", rng.integers(0, 255, (64, 64, 3), np.uint8)
            )
            write_png(root / "masks" / split / f"{i}.png", rng.integers(0, 2, (64, 64), np.uint8))
    truncated = root / "images" / "train" / "3.png"
    truncated.write_bytes(truncated.read_bytes()[:200])
    (root / "images" / "train" / "5.png").write_bytes(b"")
    write_png(root / "masks" / "train" / "7.png", np.zeros((32, 48), np.uint8))
    return ["3.png", "5.png", "7.png"]


FOLDER = [
    "data=folder",
    "data.num_classes=2",
    "data.class_names=[a,b]",
    "data.palette=[[0,0,0],[255,255,255]]",
    "data.batch_size=4",
    "data.num_workers=0",
    "trainer.max_epochs=1",
    "trainer.num_sanity_val_steps=0",
    "trainer.enable_progress_bar=false",
    "test=false",
    "logger=csv",
]


def test_corrupt_files_are_skipped_and_reported_or_stop_the_run_at_the_first(tmp_path):
    bad = corrupt_folder(tmp_path / "data")
    proc = ok(
        train(
            *FOLDER,
            f"data.root={tmp_path / 'data'}",
            "data.on_bad_sample=skip",
            f"hydra.run.dir={tmp_path / 'skip'}",
        )
    )
    assert "segkit: train epoch 0: skipped 3 bad samples" in proc.stdout
    for name in bad:
        assert f"train/{name}" in proc.stderr
    assert np.isfinite(json.loads((tmp_path / "skip" / "metrics.json").read_text())["val/miou"])

    proc = train(*FOLDER, f"data.root={tmp_path / 'data'}", f"hydra.run.dir={tmp_path / 'error'}")
    assert proc.returncode == 1
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("segkit:")]
    assert line.startswith("segkit: training stopped: ")
    assert any(f"train/{name}" in line for name in bad)
    assert line.endswith("(data.on_bad_sample=skip skips such files)")
    assert not (tmp_path / "error" / "checkpoints").exists()


@pytest.mark.parametrize("model", ["unet_gan", "maskrcnn"])
def test_adversarial_and_instance_models_skip_nonfinite_batches_too(tmp_path, model):
    from tests.integration.test_instance_train import TINY_MASKRCNN

    sizes = ["data.image_size=64", "data.train_size=8", "data.batch_size=4", "scheduler=none"]
    extra = [*TINY_MASKRCNN[1:6], *sizes] if model == "maskrcnn" else []
    nan = [f"+callbacks.nan._target_={CALLBACKS}.NanBatches", "+callbacks.nan.batches=[1]"]
    run_dir = tmp_path / "run"
    proc = ok(
        train(
            *RUN,
            f"model={model}",
            *extra,
            *nan,
            "trainer.on_nonfinite=skip",
            "logger=csv",
            f"hydra.run.dir={run_dir}",
        )
    )
    assert "segkit: skipped 1 training batches with a non-finite loss" in proc.stdout
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert all(
        torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point()
    )


def test_two_runs_started_together_get_two_run_dirs(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "segkit.train", *TINY_OVERRIDES, "logger=csv", "test=false"]
    procs = [
        subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(2)
    ]
    assert [p.wait(timeout=600) for p in procs] == [0, 0]
    runs = sorted((tmp_path / "outputs").glob("*/*"))
    assert len(runs) == 2  # same second: <dir> and <dir>_2
    assert all((run / "metrics.json").is_file() for run in runs)
