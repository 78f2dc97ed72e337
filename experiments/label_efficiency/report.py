"""Tables, intervals and plots of the label-efficiency study (study.py): mean +- std per method
and labeled fraction, paired gains over supervised-only, and the share of the gap to full
labels each method recovers, with a bootstrap 90% interval over seeds and per seed."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # experiments/study_runs.py
from study_runs import bootstrap_interval, mean_std

METHODS = ("supervised", "hung2018", "fixmatch", "unimatch", "fixmatch_hung2018")
#: Metrics a run may carry, with their table names.
METRICS = {"val_miou": "val mIoU", "test_miou": "test mIoU"}


def fraction_label(fraction: float) -> str:
    return f"1/{round(1 / fraction)}" if fraction < 1 else "1"


def values(runs: list[dict], method: str, fraction: float, metric: str) -> dict[int, float]:
    """seed -> metric of the runs of one cell."""
    return {
        r["seed"]: r[metric]
        for r in runs
        if (r["method"], r["fraction"]) == (method, fraction) and r.get(metric) is not None
    }


def gap_share(
    runs: list[dict], method: str, fraction: float, metric: str
) -> tuple[float, list[float], tuple[float, float] | None] | None:
    """The share of the gap to full labels `method` recovers at `fraction`:
    ``(mean_method - mean_sup) / (mean_sup_full - mean_sup)`` over the seeds all three cells
    have; its value per seed (runs of one seed are paired: same initialisation, order and
    labeled split); and a bootstrap 90% interval of the ratio of means, resampling seeds.
    None when a cell is missing."""
    cells = [
        values(runs, method, fraction, metric),
        values(runs, "supervised", fraction, metric),
        values(runs, "supervised", 1.0, metric),
    ]
    seeds = sorted(set.intersection(*(set(c) for c in cells)))
    if not seeds:
        return None
    semi, sup, full = ([c[s] for s in seeds] for c in cells)

    def ratio(indices: list[int]) -> float | None:
        gap = statistics.mean(full[i] for i in indices) - statistics.mean(sup[i] for i in indices)
        gain = statistics.mean(semi[i] for i in indices) - statistics.mean(sup[i] for i in indices)
        return gain / gap if gap != 0 else None

    per_seed = [
        (a - b) / (c - b) if c != b else float("nan")
        for a, b, c in zip(semi, sup, full, strict=True)
    ]
    share = ratio(list(range(len(seeds))))
    if share is None:
        return None
    return share, per_seed, bootstrap_interval(ratio, len(seeds))


def write_report(runs: list[dict], path: Path, goal_fraction: float = 0.125) -> None:
    """The markdown tables of every metric the runs carry."""
    fractions = sorted({r["fraction"] for r in runs})
    methods = [m for m in METHODS if any(r["method"] == m for r in runs)]
    header = "| method | " + " | ".join(fraction_label(f) for f in fractions) + " |"
    rule = "|---|" + "---|" * len(fractions)
    lines: list[str] = []
    for metric, name in METRICS.items():
        if not any(r.get(metric) is not None for r in runs):
            continue
        lines += [f"{name} (%), mean +- sample std over seeds:", "", header, rule]
        for method in methods:
            cells = []
            for f in fractions:
                found = list(values(runs, method, f, metric).values())
                mean, std = mean_std(found) if found else (0.0, 0.0)
                cells.append(
                    f"{100 * mean:.1f} +- {100 * std:.1f} (n={len(found)})" if found else "-"
                )
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        semi_fractions = [f for f in fractions if f < 1]
        lines += ["", f"Paired gain over supervised in {name} (points, per seed; mean):", ""]
        lines += ["| method | " + " | ".join(fraction_label(f) for f in semi_fractions) + " |"]
        lines += ["|---|" + "---|" * len(semi_fractions)]
        for method in methods[1:]:
            cells = []
            for f in semi_fractions:
                own, sup = values(runs, method, f, metric), values(runs, "supervised", f, metric)
                gains = [100 * (own[s] - sup[s]) for s in sorted(own) if s in sup]
                shown = ", ".join(f"{g:+.1f}" for g in gains)
                cells.append(f"{shown} ({statistics.mean(gains):+.1f})" if gains else "-")
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        label = fraction_label(goal_fraction)
        lines += ["", f"Share of the gap to full labels recovered at {label} ({name}):", ""]
        for method in methods[1:]:
            found = gap_share(runs, method, goal_fraction, metric)
            if found is None:
                continue
            share, per_seed, interval = found
            own = values(runs, method, goal_fraction, metric)
            sup = values(runs, "supervised", goal_fraction, metric)
            wins = sum(own[s] > sup[s] for s in own if s in sup)
            shown = f"[{interval[0]:.2f}, {interval[1]:.2f}]" if interval else "n/a"
            lines.append(
                f"- {method}: {share:.2f}, bootstrap 90% interval {shown}; per seed "
                f"{', '.join(f'{v:.2f}' for v in per_seed)}; above supervised on {wins} of "
                f"{len(per_seed)} seeds"
            )
        lines.append("")
    lines += ["Mean wall-clock per run (s):", "", header, rule]
    for method in methods:
        cells = []
        for f in fractions:
            seconds = [r["seconds"] for r in runs if (r["method"], r["fraction"]) == (method, f)]
            cells.append(f"{statistics.mean(seconds):.0f}" if seconds else "-")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    path.write_text("\n".join(lines) + "\n")


def plot(runs: list[dict], path: Path) -> None:
    """Mean and spread per method and fraction; with validation curves, a second panel of
    val mIoU against labeled epochs (mean over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = [r for r in runs if r.get("curve")]
    fig, axes = plt.subplots(1, 2 if curves else 1, figsize=(11 if curves else 5.5, 3.8))
    ax = axes[0] if curves else axes
    metric = "test_miou" if any(r.get("test_miou") is not None for r in runs) else "val_miou"
    fractions = sorted({r["fraction"] for r in runs})
    for method in METHODS:
        points = []
        for f in fractions:
            found = list(values(runs, method, f, metric).values())
            if found:
                points.append((f, *mean_std(found)))
        if points:
            xs, ms, ss = zip(*points, strict=True)
            ax.errorbar(
                xs, [100 * m for m in ms], yerr=[100 * s for s in ss], label=method, capsize=3,
                marker="o",
            )  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_xticks(fractions, [fraction_label(f) for f in fractions])
    ax.set_xlabel("labeled fraction")
    ax.set_ylabel(f"{METRICS[metric]} (%)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    if curves:
        ax = axes[1]
        for method, fraction in sorted({(r["method"], r["fraction"]) for r in curves}):
            cell = [
                r["curve"] for r in curves if (r["method"], r["fraction"]) == (method, fraction)
            ]
            epochs = [point[0] for point in cell[0]]
            means = [
                statistics.mean(c[i][1] for c in cell if len(c) > i) for i in range(len(epochs))
            ]
            ax.plot(epochs, [100 * m for m in means], label=f"{method} {fraction_label(fraction)}")
        ax.set_xlabel("epochs over the labeled images")
        ax.set_ylabel("val mIoU (%), mean over seeds")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
