"""Does adversarial training help when labels are scarce?

Trains the same U-Net supervised-only, with Luc et al.'s discriminator (luc2016) and with Hung
et al.'s semi-supervised method (hung2018) at several labeled fractions and seeds, each run a
`python -m segkit.train` subprocess with the same budget of segmenter iterations; writes
results.json (every run's final val/miou), results.md (mean +- std table) and results.png (mIoU
against labeled fraction); ``--results other.json`` names the three files after it.

    python experiments/label_efficiency/study.py                     # this machine (CPU)
    python experiments/label_efficiency/study.py --iters 20000 --batch-size 10 \
        --extra data=voc data.root=/datasets/VOCdevkit trainer.accelerator=gpu   # at scale

Runs already in results.json are kept (delete it to start over), so an interrupted study resumes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FRACTIONS = (0.125, 0.25, 0.5, 1.0)
METHODS = ("supervised", "luc2016", "hung2018")


def overrides(method: str, fraction: float, seed: int, args: argparse.Namespace) -> list[str]:
    """segkit.train overrides for one run: the same segmenter, data and iterations for all."""
    model = (
        ["model=unet"] if method == "supervised" else ["model=unet_gan", f"model/method={method}"]
    )
    # Lightning's max_steps counts optimizer steps: a GAN batch takes two (segmenter and D).
    steps = args.iters * (1 if method == "supervised" else 2)
    common = [
        f"data.labeled_fraction={fraction}",
        "data.labeled_seed=0",  # the same labeled images for every method and seed
        f"data.batch_size={args.batch_size}",
        f"seed={seed}",
        f"trainer.max_steps={steps}",
        "trainer.max_epochs=-1",
        # Score the final weights (no best-of-validation selection), validating once at the end.
        "trainer.check_val_every_n_epoch=100000",
        "trainer.num_sanity_val_steps=0",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "test=false",
    ]
    if method == "hung2018":
        common.append(f"model.semi_start={args.iters // 4}")  # the paper: 5k of 20k iterations
    if method != "supervised":
        common.append(f"model.discriminator.base_channels={args.d_channels}")
    return model + common + list(args.extra)


def run_one(method: str, fraction: float, seed: int, args: argparse.Namespace) -> dict:
    run_dir = args.out / f"{method}_f{fraction}_s{seed}"
    cmd = [sys.executable, "-m", "segkit.train", *overrides(method, fraction, seed, args)]
    cmd.append(f"hydra.run.dir={run_dir}")
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"run failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {
        "method": method,
        "fraction": fraction,
        "seed": seed,
        "val_miou": metrics["val/miou"],
        "seconds": round(time.perf_counter() - start, 1),
        "command": "python -m segkit.train " + " ".join(cmd[3:-1]),
    }


def summarise(runs: list[dict]) -> dict[tuple[str, float], tuple[float, float, int]]:
    """(method, fraction) -> (mean, sample std, count) of val mIoU."""
    table = {}
    for method in METHODS:
        for fraction in FRACTIONS:
            values = [
                r["val_miou"] for r in runs if (r["method"], r["fraction"]) == (method, fraction)
            ]
            if values:
                std = statistics.stdev(values) if len(values) > 1 else 0.0
                table[(method, fraction)] = (statistics.mean(values), std, len(values))
    return table


def write_table(table: dict, path: Path) -> None:
    fractions = sorted({f for _, f in table})
    lines = [
        "| method | " + " | ".join(f"1/{round(1 / f)}" if f < 1 else "1" for f in fractions) + " |",
        "|---|" + "---|" * len(fractions),
    ]
    for method in (m for m in METHODS if any((m, f) in table for f in fractions)):
        cells = []
        for f in fractions:
            mean, std, n = table.get((method, f), (float("nan"), 0.0, 0))
            cells.append(f"{100 * mean:.1f} +- {100 * std:.1f} (n={n})")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    path.write_text("\n".join(lines) + "\n")


def plot(table: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for method in METHODS:
        points = sorted((f, m, s) for (name, f), (m, s, _) in table.items() if name == method)
        if points:
            xs, ms, ss = zip(*points, strict=True)
            ax.errorbar(
                xs,
                [100 * m for m in ms],
                yerr=[100 * s for s in ss],
                label=method,
                capsize=3,
                marker="o",
            )
    ax.set_xscale("log", base=2)
    ax.set_xticks(FRACTIONS, ["1/8", "1/4", "1/2", "1"])
    ax.set_xlabel("labeled fraction")
    ax.set_ylabel("val mIoU (%)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=300, help="segmenter iterations per run")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--d-channels", type=int, default=32, help="discriminator base width")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fractions", type=float, nargs="+", default=list(FRACTIONS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--out", type=Path, default=Path("outputs/label_efficiency"))
    parser.add_argument("--results", type=Path, default=HERE / "results.json", help="runs file")
    parser.add_argument(
        "--extra", nargs="*", default=["data.train_size=200"], help="more overrides"
    )
    args = parser.parse_args()

    runs = json.loads(args.results.read_text())["runs"] if args.results.exists() else []
    done = {(r["method"], r["fraction"], r["seed"]) for r in runs}
    for seed in args.seeds:  # seeds outermost: a partial study already covers every cell
        for fraction in args.fractions:
            for method in args.methods:
                if (method, fraction, seed) in done:
                    continue
                run = run_one(method, fraction, seed, args)
                print(
                    f"{method:10s} fraction {fraction:<6} seed {seed}: val/miou "
                    f"{run['val_miou']:.4f} ({run['seconds']:.0f} s)",
                    flush=True,
                )
                runs.append(run)
                settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
                args.results.write_text(json.dumps({"settings": settings, "runs": runs}, indent=1))
    table = summarise(runs)
    write_table(table, args.results.with_suffix(".md"))
    plot(table, args.results.with_suffix(".png"))
    print(args.results.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
