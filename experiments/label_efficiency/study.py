"""How much of the gap to full labels do semi-supervised methods close?

Trains the same U-Net supervised-only (at every labeled fraction, 1 included: the ceiling) and
with the semi-supervised methods (below 1: they need unlabeled images): Hung et al.'s
adversarial method (hung2018), FixMatch, UniMatch and FixMatch with Hung et al.'s
discriminator (fixmatch_hung2018). Every run is a `python -m segkit.train` subprocess with the
same labeled split per fraction (``data.labeled_seed=0``), the same segmenter iterations and
batch, scored on its final weights. Writes results.json (every run), results.md (mean +- std,
paired gains, the goal ratio, wall-clock) and results.png; ``--results other.json`` names the
three files after it.

    python experiments/label_efficiency/study.py                  # this machine (CPU), resumable
    python experiments/label_efficiency/study.py --iters 20000 --batch-size 8 --jobs 1 \
        --threads 8 --encoder-weights imagenet --consistency-start 0 --results voc.json \
        --extra data=voc data.root=/datasets/VOCdevkit/VOC2012 trainer.accelerator=gpu

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

FRACTIONS = (0.0625, 0.125, 0.25, 1.0)
METHODS = ("supervised", "hung2018", "fixmatch", "unimatch", "fixmatch_hung2018")
#: Methods with a discriminator: Lightning's max_steps counts its optimizer steps too.
ADVERSARIAL = ("hung2018", "fixmatch_hung2018")
#: Methods with weak-to-strong consistency (model.consistency).
CONSISTENCY = ("fixmatch", "unimatch", "fixmatch_hung2018")


def model_overrides(method: str) -> list[str]:
    """The model group overrides of a method; the segmenter is model=semi/gan's default U-Net,
    the same network as model=unet."""
    if method == "supervised":
        return ["model=unet"]
    if method == "hung2018":
        return ["model=gan", "model/method=hung2018"]
    return ["model=semi", f"model/method={method}"]


def overrides(method: str, fraction: float, seed: int, args: argparse.Namespace) -> list[str]:
    """segkit.train overrides for one run: the same segmenter, data and iterations for all."""
    steps = args.iters * (2 if method in ADVERSARIAL else 1)
    common = [
        f"data.labeled_fraction={fraction}",
        "data.labeled_seed=0",  # the same labeled images for every method and seed
        *final_weights_overrides(args.batch_size, seed, steps),
    ]
    # Every semi-supervised method learns from labeled images only for the first quarter: from
    # scratch, early pseudo-labels are noise (Hung et al. start self-training at 5k of 20k).
    if method in ADVERSARIAL:
        common += [
            f"model.semi_start={args.iters // 4}",
            f"model.discriminator.base_channels={args.d_channels}",
        ]
    if method in CONSISTENCY:
        common.append(f"model.consistency.start={int(args.iters * args.consistency_start)}")
    if args.encoder_weights:  # the network key differs: model.net or model.segmenter
        key = "net" if method == "supervised" else "segmenter"
        common.append(f"model.{key}.encoder_weights={args.encoder_weights}")
    return model_overrides(method) + common + list(args.extra)


def run_one(method: str, fraction: float, seed: int, args: argparse.Namespace) -> dict:
    run_dir = args.out / f"{method}_f{fraction}_s{seed}"
    result = train_run(overrides(method, fraction, seed, args), run_dir, args.threads)
    return {
        "method": method,
        "fraction": fraction,
        "seed": seed,
        "val_miou": result["metrics"]["val/miou"],
        **{k: result[k] for k in ("seconds", "threads", "command")},
    }


def cells(args: argparse.Namespace) -> list[tuple[str, float, int]]:
    """(method, fraction, seed) of every run, seeds outermost: a partial study covers every
    cell with fewer seeds. Semi-supervised methods need unlabeled images: not at fraction 1."""
    return [
        (method, fraction, seed)
        for seed in args.seeds
        for fraction in args.fractions
        for method in args.methods
        if method == "supervised" or fraction < 1.0
    ]


def summarise(runs: list[dict]) -> dict[tuple[str, float], tuple[float, float, int, float]]:
    """(method, fraction) -> (mean, sample std, count, mean seconds) of val mIoU."""
    table = {}
    for method in METHODS:
        for fraction in sorted({r["fraction"] for r in runs}):
            cell = [r for r in runs if (r["method"], r["fraction"]) == (method, fraction)]
            if cell:
                values = [r["val_miou"] for r in cell]
                std = statistics.stdev(values) if len(values) > 1 else 0.0
                seconds = statistics.mean(r["seconds"] for r in cell)
                table[(method, fraction)] = (statistics.mean(values), std, len(values), seconds)
    return table


def fraction_label(fraction: float) -> str:
    return f"1/{round(1 / fraction)}" if fraction < 1 else "1"


def paired_gains(runs: list[dict], method: str, fraction: float) -> list[float]:
    """Per seed, method minus supervised at the same fraction (same init seed and split)."""
    by_seed = {(r["method"], r["seed"]): r["val_miou"] for r in runs if r["fraction"] == fraction}
    return [
        by_seed[(method, s)] - by_seed[("supervised", s)]
        for s in sorted({r["seed"] for r in runs})
        if (method, s) in by_seed and ("supervised", s) in by_seed
    ]


def gap_ratio(table: dict, method: str, fraction: float = 0.125) -> float | None:
    """(mean_method - mean_sup) / (mean_sup_full - mean_sup) at `fraction`: the share of the
    gap to full labels the method closes."""
    if not all(k in table for k in ((method, fraction), ("supervised", fraction))):
        return None
    if ("supervised", 1.0) not in table:
        return None
    sup, full = table[("supervised", fraction)][0], table[("supervised", 1.0)][0]
    return (table[(method, fraction)][0] - sup) / (full - sup)


def write_report(table: dict, runs: list[dict], path: Path) -> None:
    fractions = sorted({f for _, f in table})
    methods = [m for m in METHODS if any((m, f) in table for f in fractions)]
    header = "| method | " + " | ".join(fraction_label(f) for f in fractions) + " |"
    rule = "|---|" + "---|" * len(fractions)
    lines = ["Val mIoU (%), mean +- sample std over seeds:", "", header, rule]
    for method in methods:
        cells_ = []
        for f in fractions:
            mean, std, n, _ = table.get((method, f), (float("nan"), 0.0, 0, 0.0))
            cells_.append(f"{100 * mean:.1f} +- {100 * std:.1f} (n={n})" if n else "-")
        lines.append(f"| {method} | " + " | ".join(cells_) + " |")
    semi_fractions = [f for f in fractions if f < 1]
    lines += ["", "Paired gain over supervised (points, per seed; mean):", ""]
    lines += ["| method | " + " | ".join(fraction_label(f) for f in semi_fractions) + " |"]
    lines += ["|---|" + "---|" * len(semi_fractions)]
    for method in methods[1:]:
        cells_ = []
        for f in semi_fractions:
            gains = paired_gains(runs, method, f)
            shown = ", ".join(f"{100 * g:+.1f}" for g in gains)
            cells_.append(f"{shown} ({100 * statistics.mean(gains):+.1f})" if gains else "-")
        lines.append(f"| {method} | " + " | ".join(cells_) + " |")
    lines += ["", "Share of the gap to full labels closed at 1/8 (goal: >= 0.6):", ""]
    for method in methods[1:]:
        ratio = gap_ratio(table, method)
        gains = paired_gains(runs, method, 0.125)
        if ratio is not None:
            wins = sum(g > 0 for g in gains)
            lines.append(
                f"- {method}: {ratio:.2f}, above supervised on {wins} of {len(gains)} seeds"
            )
    lines += ["", "Mean wall-clock per run (s):", ""]
    lines += [header, rule]
    for method in methods:
        cells_ = [
            f"{table[(method, f)][3]:.0f}" if (method, f) in table else "-" for f in fractions
        ]
        lines.append(f"| {method} | " + " | ".join(cells_) + " |")
    path.write_text("\n".join(lines) + "\n")


def plot(table: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for method in METHODS:
        points = sorted((f, m, s) for (name, f), (m, s, _, _) in table.items() if name == method)
        if points:
            xs, ms, ss = zip(*points, strict=True)
            ax.errorbar(
                xs, [100 * m for m in ms], yerr=[100 * s for s in ss], label=method, capsize=3,
                marker="o",
            )  # fmt: skip
    fractions = sorted({f for _, f in table})
    ax.set_xscale("log", base=2)
    ax.set_xticks(fractions, [fraction_label(f) for f in fractions])
    ax.set_xlabel("labeled fraction")
    ax.set_ylabel("val mIoU (%)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=200, help="segmenter iterations per run")
    parser.add_argument("--batch-size", type=int, default=4, help="labeled (and unlabeled) batch")
    parser.add_argument("--d-channels", type=int, default=32, help="discriminator base width")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fractions", type=float, nargs="+", default=list(FRACTIONS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument(
        "--encoder-weights", default=None, help="e.g. imagenet (from the local cache)"
    )
    parser.add_argument(
        "--consistency-start",
        type=float,
        default=0.25,
        help="share of the iterations before the consistency loss (0 from pretrained weights)",
    )
    parser.add_argument("--jobs", type=int, default=2, help="runs at once (CPU: one per core)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--out", type=Path, default=Path("outputs/label_efficiency"))
    parser.add_argument("--results", type=Path, default=HERE / "results.json", help="runs file")
    parser.add_argument(
        "--extra", nargs="*", default=["data.train_size=200"], help="more overrides"
    )
    args = parser.parse_args()

    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    # A resumed or extended study (e.g. more seeds at 1/8) lists every seed and fraction run.
    earlier = previous_settings(args.results)
    settings["seeds"] = sorted(set(earlier.get("seeds", [])) | set(args.seeds))
    settings["fractions"] = sorted(set(earlier.get("fractions", [])) | set(args.fractions))
    settings["methods"] = [
        m for m in METHODS if m in earlier.get("methods", []) or m in args.methods
    ]
    runs = run_all(
        args.results,
        settings,
        cells(args),
        key=lambda r: (r["method"], r["fraction"], r["seed"]),
        run=lambda cell: run_one(*cell, args),
        jobs=args.jobs,
    )
    table = summarise(runs)
    write_report(table, runs, args.results.with_suffix(".md"))
    plot(table, args.results.with_suffix(".png"))
    print(args.results.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
