"""U-Net training throughput on this CPU: 1 process x 2 threads against 2 DDP processes x 1
thread (trainer=ddp_cpu), at the same global batch.

Each row is a real `python -m segkit.train` run (model=unet, ResNet-18, synthetic data at
256x256, cached scenes, no loader workers) with a step-timer callback; the two settings take
turns, `--repeats` times each, so both see the same machine state. Throughput is global
images per second from the median step time after `--warmup` steps.

    python experiments/scaling/ddp_cpu.py [--repeats 3] [--steps 24] [--warmup 4]

Writes results.md and results.json beside this file.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
GLOBAL_BATCH = 8
SETTINGS = {
    # name: (trainer overrides, per-process batch, OMP threads per process)
    "1 process x 2 threads": (("trainer.devices=1", "trainer.accelerator=cpu"), GLOBAL_BATCH, 2),
    "2 processes x 1 thread (ddp_cpu)": (("trainer=ddp_cpu",), GLOBAL_BATCH // 2, 1),
}


def run(setting: str, steps: int, work: Path) -> dict:
    overrides, batch, threads = SETTINGS[setting]
    timing = work / "timing.json"
    command = [
        sys.executable, "-m", "segkit.train", *overrides,
        "data.image_size=256", f"data.batch_size={batch}", "data.num_workers=0",
        f"data.train_size={steps * GLOBAL_BATCH}", "data.val_size=2", "data.test_size=2",
        "trainer.max_epochs=1", "trainer.limit_val_batches=0", "trainer.num_sanity_val_steps=0",
        "trainer.enable_progress_bar=false", "+trainer.enable_checkpointing=false",
        "~callbacks", "logger=none", "test=false",
        "+callbacks.timer._target_=experiments.scaling.step_timer.StepTimer",
        f"+callbacks.timer.out_file={timing}", f"hydra.run.dir={work / 'run'}",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(REPO)}
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{setting} failed:\n{proc.stderr[-3000:]}")
    return json.loads(timing.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--warmup", type=int, default=4)
    args = parser.parse_args()

    medians: dict[str, list[float]] = {name: [] for name in SETTINGS}
    threads: dict[str, int] = {}
    for repeat in range(args.repeats):
        for name in SETTINGS:
            with tempfile.TemporaryDirectory() as work:
                record = run(name, args.steps, Path(work))
            steady = record["step_s"][args.warmup :]
            medians[name].append(statistics.median(steady))
            threads[name] = record["threads_per_process"]
            print(f"repeat {repeat}: {name}: {GLOBAL_BATCH / medians[name][-1]:.2f} images/s")

    one, two = SETTINGS
    ratios = [a / b for a, b in zip(medians[one], medians[two], strict=True)]  # pair by pair
    rows = {
        name: {
            "threads_per_process": threads[name],
            "images_per_s": GLOBAL_BATCH / statistics.median(times),
            "images_per_s_min": GLOBAL_BATCH / max(times),
            "images_per_s_max": GLOBAL_BATCH / min(times),
            "step_s_median": statistics.median(times),
        }
        for name, times in medians.items()
    }
    result = {
        "model": "unet (ResNet-18), 256x256, global batch 8, fp32",
        "repeats": args.repeats,
        "steps_timed": args.steps - args.warmup,
        "settings": rows,
        "ddp_over_single_ratio_median": statistics.median(ratios),
        "ddp_over_single_ratios": ratios,
    }
    (HERE / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# 1 process x 2 threads vs 2 DDP processes x 1 thread (this CPU, 2 cores)",
        "",
        f"U-Net ResNet-18, 256x256, global batch {GLOBAL_BATCH}, fp32, median step time over "
        f"{args.steps - args.warmup} steps after {args.warmup} warm-up steps, {args.repeats} "
        "runs each, taking turns. Command: `python experiments/scaling/ddp_cpu.py`.",
        "",
        "| setting | threads/process | images/s (median) | min | max |",
        "|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        lines.append(
            f"| {name} | {row['threads_per_process']} | {row['images_per_s']:.2f} | "
            f"{row['images_per_s_min']:.2f} | {row['images_per_s_max']:.2f} |"
        )
    lines += [
        "",
        f"DDP / single process throughput: {statistics.median(ratios):.2f} "
        f"(pairs: {', '.join(f'{r:.2f}' for r in ratios)}).",
    ]
    (HERE / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
