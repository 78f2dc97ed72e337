"""Rows 5 and 6, startup and memory: `python -m segkit.train` as a user runs it.

- help: ``python -m segkit.train --help`` until it exits;
- config_error: a refused config (``trainer.on_nonfinite=sometimes``) until it exits (status 2);
- first_step: from launching the default training command (``make train``'s) to the start of
  its first training step (after the sanity validation), written by `first_step_marker`; the
  run is then stopped;
- peak_rss_mb: the peak resident memory of the training process (its largest process: the
  loader runs in it, `data.num_workers=0`) over the whole default run, from ``wait4``.

Each is a fresh process; medians of `reps` runs (peak RSS over `rss_runs` full runs).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from common import summary

HERE = Path(__file__).resolve().parent
TRAIN = (sys.executable, "-m", "segkit.train")


def bench_env() -> dict[str, str]:
    """The environment of every process the bench starts: never the network (W&B offline,
    Hugging Face offline), and this folder importable (`first_step_marker`)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    env.setdefault("WANDB_MODE", "offline")
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env


def time_command(args: Sequence[str], expect_status: int) -> float:
    start = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, env=bench_env())
    seconds = time.perf_counter() - start
    if done.returncode != expect_status:
        raise RuntimeError(f"{' '.join(args)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return seconds


def first_step_seconds(overrides: Sequence[str], tmp: Path, index: int) -> float:
    marker = tmp / f"first_step_{index}"
    args = [
        *TRAIN,
        *overrides,
        f"hydra.run.dir={tmp / f'first_step_run_{index}'}",
        "+callbacks.first_step._target_=first_step_marker.FirstStepMarker",
        f"+callbacks.first_step.path={marker}",
    ]
    log = tmp / f"first_step_{index}.log"
    launched = time.time()
    with log.open("wb") as stderr:  # a file, not a pipe: a full pipe would stall the run
        process = subprocess.Popen(
            args, env=bench_env(), stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True
        )
    try:
        while not marker.exists():
            if process.poll() is not None:
                raise RuntimeError(
                    f"{' '.join(args)} exited {process.returncode} before a step:\n"
                    f"{log.read_text(errors='replace')[-2000:]}"
                )
            time.sleep(0.02)
        return float(marker.read_text()) - launched
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the run and its W&B service
        process.wait()


def peak_rss_mb(overrides: Sequence[str], run_dir: Path) -> float:
    log = run_dir.with_name(f"{run_dir.name}.log")
    with log.open("wb") as stderr:  # a file, not a pipe: the progress bar would fill a pipe
        process = subprocess.Popen(
            [*TRAIN, *overrides, f"hydra.run.dir={run_dir}"],
            env=bench_env(),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise RuntimeError(
            f"training exited {process.returncode}:\n{log.read_text(errors='replace')[-2000:]}"
        )
    return usage.ru_maxrss / 1024  # Linux: KiB


def measure(reps: int, rss_runs: int, train_overrides: Sequence[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        help_s = [time_command([*TRAIN, "--help"], 0) for _ in range(reps)]
        error_s = [
            time_command([*TRAIN, "trainer.on_nonfinite=sometimes", f"hydra.run.dir={tmp}/e"], 2)
            for _ in range(reps)
        ]
        first_s = [first_step_seconds(train_overrides, tmp, i) for i in range(reps)]
        rss = [peak_rss_mb(train_overrides, tmp / f"rss_run_{i}") for i in range(rss_runs)]
    return {
        "startup_s": {
            "help": summary(help_s, 2),
            "config_error": summary(error_s, 2),
            "first_step": summary(first_s, 2),
        },
        "peak_rss_mb": summary(rss, 0),
        "train_command": " ".join(["python -m segkit.train", *train_overrides]),
    }
