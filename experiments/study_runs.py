"""What the paired-seed studies in experiments/ share: one `python -m segkit.train`
subprocess per run, scored on its metrics.json and timed, and a results.json that a study
extends run by run, so an interrupted study resumes where it stopped (finished runs are kept,
an unfinished one starts over)."""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any


def final_weights_overrides(
    batch_size: int, seed: int, steps: int, validate_every: int | None = None, test: bool = False
) -> list[str]:
    """segkit.train overrides every study run shares: batch, seed and optimizer steps, then
    the final weights scored at the end (no best-of-validation selection), quietly, with a CSV
    log. `validate_every` training batches: a validation curve on the way (it must divide the
    run: the last validation is then of the final weights, kept as the scored checkpoint).
    `test`: the test split scored too."""
    validation = ["trainer.check_val_every_n_epoch=100000"]
    if validate_every is not None:
        validation = [
            "trainer.check_val_every_n_epoch=null",
            f"trainer.val_check_interval={validate_every}",
            "callbacks.model_checkpoint.monitor=null",  # the last validated weights
        ]
    return [
        f"data.batch_size={batch_size}",
        f"seed={seed}",
        f"trainer.max_steps={steps}",
        "trainer.max_epochs=-1",
        *validation,
        "trainer.num_sanity_val_steps=0",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "logger=csv",
        f"test={str(test).lower()}",
    ]


def validation_curve(run_dir: Path, every: int, count: int) -> list[tuple[int, float]]:
    """[(training batches, val/miou)] of the `count` validations a run made every `every`
    batches, read from its csv/metrics.csv in order (a later row, the closing re-validation
    of the scored checkpoint, is not part of the curve)."""
    with open(run_dir / "csv" / "metrics.csv") as f:
        scores = [float(row["val/miou"]) for row in csv.DictReader(f) if row.get("val/miou")]
    if len(scores) < count:
        raise ValueError(f"{run_dir}: {len(scores)} validations logged, expected {count}")
    return [(every * (i + 1), score) for i, score in enumerate(scores[:count])]


def bootstrap_interval(
    statistic: Callable[[list[int]], float | None],
    count: int,
    rounds: int = 10_000,
    level: float = 0.9,
    seed: int = 0,
) -> tuple[float, float] | None:
    """The central `level` interval of `statistic` over `rounds` resamplings (with
    replacement) of the indices ``range(count)`` (seeds); resamples where it is undefined
    (None) are dropped. None when fewer than two indices."""
    if count < 2:
        return None
    rng = random.Random(seed)
    values = [statistic(rng.choices(range(count), k=count)) for _ in range(rounds)]
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    tail = (1.0 - level) / 2
    return values[int(tail * len(values))], values[int((1.0 - tail) * len(values)) - 1]


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


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
