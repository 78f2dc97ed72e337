"""What the paired-seed studies in experiments/ share: one `python -m segkit.train`
subprocess per run, scored on its metrics.json and timed, and a results.json that a study
extends run by run, so an interrupted study resumes where it stopped (finished runs are kept,
an unfinished one starts over)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any


def final_weights_overrides(batch_size: int, seed: int, steps: int) -> list[str]:
    """segkit.train overrides every study run shares: batch, seed and optimizer steps, then
    the final weights scored once at the end (no best-of-validation selection), quietly, with
    a CSV log and no test."""
    return [
        f"data.batch_size={batch_size}",
        f"seed={seed}",
        f"trainer.max_steps={steps}",
        "trainer.max_epochs=-1",
        "trainer.check_val_every_n_epoch=100000",
        "trainer.num_sanity_val_steps=0",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "logger=csv",
        "test=false",
    ]


def train_run(overrides: Sequence[str], run_dir: Path, threads: int) -> dict[str, Any]:
    """Train one run in `run_dir` (emptied first); its final metrics, wall-clock seconds and
    the command (without the run dir). RuntimeError with the run's stderr when it fails."""
    cmd = [sys.executable, "-m", "segkit.train", *overrides, f"hydra.run.dir={run_dir}"]
    if run_dir.exists():
        shutil.rmtree(run_dir)  # an unfinished run of an interrupted study starts over
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"run failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return {
        "metrics": json.loads((run_dir / "metrics.json").read_text()),
        "seconds": round(time.perf_counter() - start, 1),
        "threads": threads,
        "command": "python -m segkit.train " + " ".join(cmd[3:-1]),
    }


def run_all(
    results: Path,
    settings: dict[str, Any],
    cells: Sequence[tuple],
    key: Callable[[dict], tuple],
    run: Callable[[tuple], dict],
    jobs: int,
) -> list[dict]:
    """Run every cell whose `key` is not among the runs of `results` yet, `jobs` at a time,
    appending each finished run (``run(cell)``) to `results` with `settings`; all runs."""
    previous = json.loads(results.read_text()) if results.exists() else {}
    runs = previous.get("runs", [])
    done = {key(r) for r in runs}
    lock = threading.Lock()

    def record(cell: tuple) -> None:
        result = run(cell)
        with lock:  # one writer of results.json at a time
            runs.append(result)
            results.write_text(json.dumps({"settings": settings, "runs": runs}, indent=1))
        shown = " ".join(str(c) for c in cell)
        print(f"{shown}: val/miou {result['val_miou']:.4f} ({result['seconds']:.0f} s)", flush=True)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for future in [pool.submit(record, c) for c in cells if c not in done]:
            future.result()
    return runs


def previous_settings(results: Path) -> dict[str, Any]:
    """The settings of an earlier (partial) study in `results`, {} if none."""
    return json.loads(results.read_text()).get("settings", {}) if results.exists() else {}
