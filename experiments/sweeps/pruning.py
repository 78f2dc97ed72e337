"""What does pruning buy a sweep? The same Optuna search of the default recipe (TPE with the
same seed, hparams_search=optuna, 12 trials) with median pruning and without, run side by side,
each trial one thread: wall-clock, trials pruned, best val/miou, and the checkpoint bytes a
trial and a plain run keep.

    python experiments/sweeps/pruning.py                    # about 2 hours on 2 cores
    python experiments/sweeps/pruning.py --trials 4 --extra trainer.max_epochs=2   # a smoke run

Writes results.json and results.md beside this script (--results names them).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
NO_PRUNING = [
    "~sweep.pruner.n_startup_trials",
    "~sweep.pruner.n_warmup_steps",
    "sweep.pruner._target_=optuna.pruners.NopPruner",
]


def sweep(name: str, extra: list[str], args: argparse.Namespace) -> dict:
    sweep_dir = args.out / name
    command = [
        sys.executable, "-m", "segkit.sweep", "hparams_search=optuna",
        f"sweep.n_trials={args.trials}", "logger=csv", f"hydra.sweep.dir={sweep_dir}",
        *extra, *args.extra,
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{proc.stderr[-3000:]}")
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    trials = sorted(p for p in sweep_dir.iterdir() if p.is_dir())
    best_bytes = [(p / "checkpoints" / "best.ckpt").stat().st_size for p in trials
                  if (p / "checkpoints" / "best.ckpt").is_file()]  # fmt: skip
    return {
        "name": name,
        "seconds": round(seconds, 1),
        "trials": results["trials"],
        "best_value": results["best_value"],
        "best_params": results["best_params"],
        "checkpoint_bytes_per_trial": sum(best_bytes) / max(len(best_bytes), 1),
        "files_per_trial": sorted({f.name for p in trials for f in (p / "checkpoints").glob("*")}),
        "command": "python -m segkit.sweep " + " ".join(command[3:]),
    }


def plain_run_bytes(args: argparse.Namespace) -> dict:
    """Checkpoint bytes of one default run: best.ckpt (slim) and last.ckpt (full); before this
    change both were full."""
    run_dir = args.out / "plain_run"
    command = [sys.executable, "-m", "segkit.train", "logger=csv", "test=false",
               f"hydra.run.dir={run_dir}", *args.extra]  # fmt: skip
    subprocess.run(
        command, check=True, capture_output=True, env=dict(os.environ, OMP_NUM_THREADS="2")
    )
    best = (run_dir / "checkpoints" / "best.ckpt").stat().st_size
    last = (run_dir / "checkpoints" / "last.ckpt").stat().st_size
    return {
        "best_bytes": best,
        "last_bytes": last,
        "before_bytes": 2 * last,
        "after_bytes": best + last,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--out", type=Path, default=Path("outputs/sweep_pruning"))
    parser.add_argument("--results", type=Path, default=HERE / "results.json")
    parser.add_argument("--extra", nargs="*", default=[], help="more overrides for every run")
    args = parser.parse_args()
    with ThreadPoolExecutor(max_workers=2) as pool:  # side by side: the same machine load
        arms = list(
            pool.map(lambda a: sweep(*a, args), [("pruning", []), ("no_pruning", NO_PRUNING)])
        )
    record = {"arms": arms, "plain_run": plain_run_bytes(args), "trials": args.trials}
    args.results.write_text(json.dumps(record, indent=1) + "\n")
    with_, without = arms
    mb = 1024 * 1024
    plain = record["plain_run"]
    lines = [
        f"Optuna sweep of the default recipe, {args.trials} trials each, side by side:",
        "",
        "| | wall-clock (min) | trials (state: count) | best val/miou | checkpoint MB per trial |",
        "|---|---|---|---|---|",
        *(
            f"| {a['name']} | {a['seconds'] / 60:.1f} | {a['trials']} | {a['best_value']:.4f} | "
            f"{a['checkpoint_bytes_per_trial'] / mb:.1f} |"
            for a in arms
        ),
        "",
        f"Pruning / no pruning wall-clock: {with_['seconds'] / without['seconds']:.2f}.",
        "",
        f"A plain default run keeps best.ckpt {plain['best_bytes'] / mb:.1f} MB (no optimizer "
        f"state) and last.ckpt {plain['last_bytes'] / mb:.1f} MB: "
        f"{plain['after_bytes'] / mb:.1f} MB, against {plain['before_bytes'] / mb:.1f} MB when "
        "both kept the optimizer state; a sweep trial keeps best.ckpt only.",
    ]
    args.results.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
