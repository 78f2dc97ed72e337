"""How much of the domain gap do adaptation methods close on the built-in shift?

Trains the same U-Net on the labeled source of ``data=synthetic_shift`` and scores it on the
shifted target: source-only, AdaptSegNet, ADVENT and DACS (``model=adapt``), and a target
oracle trained on the target's own labels (``model=unet data=synthetic_shifted``: the same
scenes, labeled). Every run is a `python -m segkit.train` subprocess with the same segmenter
iterations and batch per method, scored on its final weights on the target's val split.
Writes results.json (every run), results.md (mean +- std, paired gains, the gap share,
wall-clock) and results.png; ``--results other.json`` names the three files after it.

    python experiments/domain_adaptation/study.py                  # this machine (CPU)
    python experiments/domain_adaptation/study.py --iters 40000 --batch-size 4 --jobs 1 \
        --threads 8 --results gpu.json --extra trainer.accelerator=gpu

Runs already in results.json are kept (delete it to start over), so an interrupted study
resumes where it stopped.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # experiments/study_runs.py
from study_runs import final_weights_overrides, previous_settings, run_all, train_run  # noqa: E402

METHODS = ("source_only", "adaptsegnet", "advent", "dacs", "fda", "oracle")
#: Methods with a discriminator: Lightning's max_steps counts its optimizer steps too.
ADVERSARIAL = ("adaptsegnet", "advent")


def overrides(method: str, seed: int, args: argparse.Namespace) -> list[str]:
    """segkit.train overrides for one run: the same segmenter, iterations and batch for all."""
    sizes = {
        "train_size": args.train_size,
        "val_size": args.val_size,
        "image_size": args.image_size,
    }
    if method == "oracle":  # the target's scenes with their labels, the same U-Net
        model = ["model=unet", "data=synthetic_shifted"]
        model += [f"data.{k}={v}" for k, v in sizes.items()]
    else:
        model = ["model=adapt", f"model/method={method}", "data=synthetic_shift"]
        model += [f"data.{d}.{k}={v}" for d in ("source", "target") for k, v in sizes.items()]
        model += [
            # From scratch, early pseudo-labels and target alignment chase noise: the
            # adaptation terms start after a quarter of the run.
            f"model.adapt_start={int(args.iters * args.adapt_start)}",
        ]
    if method in ADVERSARIAL:
        model.append(f"model.discriminator.base_channels={args.d_channels}")
    if method == "dacs" and args.ema is not None:
        model.append(f"model.method.ema_momentum={args.ema}")
    if method == "dacs" and args.teacher_norm is not None:
        model.append(f"model.method.teacher_normalization={args.teacher_norm}")
    steps = args.iters * (2 if method in ADVERSARIAL else 1)
    common = final_weights_overrides(args.batch_size, seed, steps)
    return model + common + list(args.extra)


def run_one(method: str, seed: int, args: argparse.Namespace) -> dict:
    result = train_run(overrides(method, seed, args), args.out / f"{method}_s{seed}", args.threads)
    metrics = result["metrics"]
    return {
        "method": method,
        "seed": seed,
        "val_miou": metrics["val/miou"],  # the target's val split
        "source_val_miou": metrics.get("val_source/miou"),  # adaptation runs only
        **{k: result[k] for k in ("seconds", "threads", "command")},
    }


def summarise(runs: list[dict]) -> dict[str, tuple[float, float, int, float]]:
    """method -> (mean, sample std, count, mean seconds) of target val mIoU."""
    table = {}
    for method in METHODS:
        values = [r["val_miou"] for r in runs if r["method"] == method]
        if values:
            std = statistics.stdev(values) if len(values) > 1 else 0.0
            seconds = statistics.mean(r["seconds"] for r in runs if r["method"] == method)
            table[method] = (statistics.mean(values), std, len(values), seconds)
    return table


def paired_gains(runs: list[dict], method: str) -> list[float]:
    """Per seed, method minus source-only (same initialisation seed and data)."""
    by_seed = {(r["method"], r["seed"]): r["val_miou"] for r in runs}
    return [
        by_seed[(method, s)] - by_seed[("source_only", s)]
        for s in sorted({r["seed"] for r in runs})
        if (method, s) in by_seed and ("source_only", s) in by_seed
    ]


def gap_share(table: dict, method: str) -> float | None:
    """(mean_method - mean_source_only) / (mean_oracle - mean_source_only)."""
    if not all(m in table for m in (method, "source_only", "oracle")):
        return None
    low, high = table["source_only"][0], table["oracle"][0]
    return (table[method][0] - low) / (high - low)


def write_report(table: dict, runs: list[dict], path: Path) -> None:
    lines = [
        "Target val mIoU (%), mean +- sample std over seeds; source val mIoU of the same runs:",
        "",
        "| method | target mIoU | source mIoU | paired gain over source-only (points) |"
        " share of the gap closed | wall-clock (s) |",
        "|---|---|---|---|---|---|",
    ]
    for method in METHODS:
        if method not in table:
            continue
        mean, std, n, seconds = table[method]
        source = [r["source_val_miou"] for r in runs if r["method"] == method]
        source = [s for s in source if s is not None]
        shown_source = f"{100 * statistics.mean(source):.1f}" if source else "-"
        gains = paired_gains(runs, method) if method != "source_only" else []
        shown_gains = (
            ", ".join(f"{100 * g:+.1f}" for g in gains) + f" ({100 * statistics.mean(gains):+.1f})"
            if gains
            else "-"
        )
        share = gap_share(table, method) if method not in ("source_only", "oracle") else None
        lines.append(
            f"| {method} | {100 * mean:.1f} +- {100 * std:.1f} (n={n}) | {shown_source} | "
            f"{shown_gains} | {'-' if share is None else f'{share:.2f}'} | {seconds:.0f} |"
        )
    path.write_text("\n".join(lines) + "\n")


def plot(table: dict, runs: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [m for m in METHODS if m in table]
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.bar(
        range(len(methods)),
        [100 * table[m][0] for m in methods],
        yerr=[100 * table[m][1] for m in methods],
        capsize=4,
        color=["grey", "tab:blue", "tab:orange", "tab:green", "black"][: len(methods)],
        alpha=0.7,
    )
    for i, method in enumerate(methods):  # every seed's run
        values = [100 * r["val_miou"] for r in runs if r["method"] == method]
        ax.scatter([i] * len(values), values, color="k", s=10, zorder=3)
    ax.set_xticks(range(len(methods)), methods, fontsize=8)
    ax.set_ylabel("target val mIoU (%)")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=300, help="segmenter iterations per run")
    parser.add_argument("--batch-size", type=int, default=8, help="source (and target) batch")
    parser.add_argument("--train-size", type=int, default=1600, help="scenes per domain")
    parser.add_argument("--val-size", type=int, default=200, help="validation scenes per domain")
    parser.add_argument("--image-size", type=int, default=64, help="scene side, pixels")
    parser.add_argument("--d-channels", type=int, default=32, help="discriminator base width")
    parser.add_argument(
        "--adapt-start", type=float, default=0.25, help="share of the run on the source alone"
    )
    parser.add_argument("--ema", type=float, default=None, help="DACS's EMA momentum override")
    parser.add_argument(
        "--teacher-norm",
        choices=("batch", "running"),
        default=None,
        help="DACS teacher's batch-norm statistics (default: the preset's, batch)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--jobs", type=int, default=2, help="runs at once (CPU: one per core)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--out", type=Path, default=Path("outputs/domain_adaptation"))
    parser.add_argument("--results", type=Path, default=HERE / "results.json", help="runs file")
    parser.add_argument("--extra", nargs="*", default=[], help="more segkit.train overrides")
    args = parser.parse_args()

    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    earlier = previous_settings(args.results)
    settings["seeds"] = sorted(set(earlier.get("seeds", [])) | set(args.seeds))
    settings["methods"] = [m for m in METHODS if m in earlier.get("methods", []) + args.methods]
    cells = [(method, seed) for seed in args.seeds for method in args.methods]
    runs = run_all(
        args.results,
        settings,
        cells,
        key=lambda r: (r["method"], r["seed"]),
        run=lambda cell: run_one(*cell, args),
        jobs=args.jobs,
    )
    table = summarise(runs)
    write_report(table, runs, args.results.with_suffix(".md"))
    plot(table, runs, args.results.with_suffix(".png"))
    print(args.results.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
