"""Leaderboards of finished runs from what every segkit run leaves in its run dir (no W&B
needed): `read_run`, `leaderboard`, `write_outputs` (Markdown, CSV, curves, per-class IoU).
`segkit.compare` is the command; see its docstring for the files. No torch import."""

from __future__ import annotations

import csv
import json
import math
import os
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Config keys that differ between any two runs without saying anything about the method.
IGNORED_PREFIXES = ("paths.", "hydra.", "logger.", "callbacks.", "trainer.default_root_dir")


class CompareError(ValueError):
    """The given dirs hold no comparable segkit runs."""


@dataclass
class Run:
    """One finished run, as read from its dir."""

    path: Path
    config: dict[str, Any]  # flat: "optimizer.lr" -> 0.003
    choices: dict[str, str]  # config group -> option ("model" -> "unet")
    curve: list[tuple[int, float]] = field(default_factory=list)  # (epoch, metric)
    epoch_seconds: list[float] = field(default_factory=list)
    final: dict[str, float | None] = field(default_factory=dict)  # metrics.json
    samples: Path | None = None  # the latest samples/epoch_NNN.png

    def best(self, metric: str, mode: str) -> float:
        values = [v for _, v in self.curve if not math.isnan(v)]
        if not values and isinstance(self.final.get(metric), float):
            values = [self.final[metric]]
        if not values:
            return math.nan
        return max(values) if mode == "max" else min(values)


def find_run_dirs(paths: Iterable[Path]) -> list[Path]:
    """Run dirs given directly or found below the given dirs (a sweep dir, ``outputs/``)."""
    found: list[Path] = []
    for path in paths:
        if not path.is_dir():
            raise CompareError(f"{path}: no such directory")
        if (path / ".hydra" / "config.yaml").is_file():
            found.append(path)
            continue
        below = sorted(p.parent.parent for p in path.rglob(".hydra/config.yaml"))
        if not below:
            raise CompareError(
                f"{path}: no segkit run dirs in it (a run dir has .hydra/config.yaml)"
            )
        found.extend(below)
    return list(dict.fromkeys(p.resolve() for p in found))


def read_run(path: Path, metric: str) -> Run:
    from omegaconf import OmegaConf

    config = OmegaConf.to_container(OmegaConf.load(path / ".hydra" / "config.yaml"))
    choices: dict[str, str] = {}
    hydra_file = path / ".hydra" / "hydra.yaml"
    if hydra_file.is_file():
        raw = OmegaConf.to_container(OmegaConf.load(hydra_file).hydra.runtime.choices)
        choices = {k: str(v) for k, v in raw.items() if "/" not in k and k != "hydra"}
    run = Run(path=path, config=dict(_flatten(config)), choices=choices)
    metrics_csv = path / "csv" / "metrics.csv"
    if metrics_csv.is_file():
        with metrics_csv.open(newline="") as f:
            rows = list(csv.DictReader(f))
        run.epoch_seconds = [float(r["time/epoch_s"]) for r in rows if r.get("time/epoch_s")]
        run.curve = [(int(r["epoch"]), float(r[metric])) for r in rows if r.get(metric)]
    metrics_json = path / "metrics.json"
    if metrics_json.is_file():
        run.final = json.loads(metrics_json.read_text())
    grids = sorted((path / "samples").glob("epoch_*.png"))
    run.samples = grids[-1] if grids else None
    return run


def differing_columns(runs: Sequence[Run]) -> list[str]:
    """Group choices and config keys whose values are not the same in every run."""
    if len(runs) < 2:
        return []
    groups = sorted({g for r in runs for g in r.choices})
    # A group stands for its keys only when every run recorded its choices (a run made before
    # `segkit.fit` recorded them has none): otherwise the keys that differ are shown.
    recorded = all(r.choices for r in runs)
    changed_groups = [g for g in groups if recorded and len({r.choices.get(g) for r in runs}) > 1]
    keys = sorted({k for r in runs for k in r.config})
    changed_keys = [
        k
        for k in keys
        if not k.startswith(IGNORED_PREFIXES)
        and not any(k == g or k.startswith(g + ".") for g in changed_groups)
        and len({json.dumps(r.config.get(k), sort_keys=True, default=str) for r in runs}) > 1
    ]
    return changed_groups + changed_keys


def leaderboard(
    runs: Sequence[Run], metric: str, mode: str
) -> tuple[list[str], list[list[str]], list[Run]]:
    """(header, rows as text, runs in row order): best `metric` first."""
    columns = differing_columns(runs)
    sign = -1 if mode == "max" else 1
    ordered = sorted(
        runs, key=lambda r: (math.isnan(r.best(metric, mode)), sign * _num(r, metric, mode))
    )
    test_key = "test/" + metric.split("/", 1)[-1]
    has_test = any(isinstance(r.final.get(test_key), float) for r in runs)
    header = ["run", *columns, f"best {metric}"] + ([test_key] if has_test else [])
    header += ["epochs", "epoch s"]
    has_samples = any(r.samples for r in runs)
    header += ["samples"] if has_samples else []
    root = _common_parent([r.path for r in runs])
    rows = []
    for run in ordered:
        values = [run.choices.get(c, run.config.get(c)) for c in columns]
        row = [str(run.path.relative_to(root)) if root else str(run.path)]
        row += [_text(v) for v in values]
        row.append(_text(run.best(metric, mode)))
        if has_test:
            row.append(_text(run.final.get(test_key)))
        row.append(str(len(run.curve)))
        row.append(_text(statistics.median(run.epoch_seconds)) if run.epoch_seconds else "")
        if has_samples:
            row.append(str(run.samples) if run.samples else "")
        rows.append(row)
    return header, rows, ordered


def write_outputs(
    header: list[str],
    rows: list[list[str]],
    ordered: Sequence[Run],
    metric: str,
    out: Path,
    top: int,
) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    markdown = out / "leaderboard.md"
    markdown.write_text(markdown_table(header, _linked_samples(header, rows, out)) + "\n")
    table = out / "leaderboard.csv"
    with table.open("w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    labels = [row[0] for row in rows]
    written = [markdown, table, plot_curves(ordered, labels, metric, out / "curves.png")]
    bars = plot_per_class(ordered[:top], labels[:top], out / "per_class_iou.png")
    return written + ([bars] if bars else [])


def _linked_samples(header: Sequence[str], rows: list[list[str]], out: Path) -> list[list[str]]:
    """Rows with the samples column as markdown links relative to `out` (where the .md is)."""
    if "samples" not in header:
        return rows
    column = header.index("samples")
    linked = []
    for row in rows:
        row = list(row)
        if row[column]:
            grid = Path(row[column])
            row[column] = f"[{grid.stem}]({os.path.relpath(grid, out)})"
        linked.append(row)
    return linked


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def plot_curves(runs: Sequence[Run], labels: Sequence[str], metric: str, path: Path) -> Path:
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for run, label in zip(runs, labels, strict=True):
        if run.curve:
            epochs, values = zip(*sorted(run.curve), strict=True)
            axes.plot(epochs, values, marker="o", markersize=3, label=label)
    axes.set_xlabel("epoch")
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.set_ylabel(metric)
    axes.grid(alpha=0.3)
    if len(runs) <= 12:
        axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def plot_per_class(runs: Sequence[Run], labels: Sequence[str], path: Path) -> Path | None:
    """Grouped bars of ``val/iou/<class>`` per run; None when no run has per-class scores."""
    import numpy as np

    classes = sorted(
        {k.removeprefix("val/iou/") for r in runs for k in r.final if k.startswith("val/iou/")}
    )
    if not classes:
        return None
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(max(6, 0.6 * len(classes) * max(1, len(runs)) / 2), 4.5))
    width = 0.8 / len(runs)
    x = np.arange(len(classes))
    for i, (run, label) in enumerate(zip(runs, labels, strict=True)):
        values = [run.final.get(f"val/iou/{c}") for c in classes]
        heights = [v if isinstance(v, float) else 0.0 for v in values]
        axes.bar(x + i * width - 0.4 + width / 2, heights, width, label=label)
    axes.set_xticks(x, classes, rotation=45, ha="right")
    axes.set_ylabel("val IoU")
    axes.set_ylim(0, 1)
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def _flatten(node: Any, prefix: str = "") -> Iterable[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _flatten(value, f"{prefix}{key}.")
    else:
        yield prefix.rstrip("."), node


def _num(run: Run, metric: str, mode: str) -> float:
    value = run.best(metric, mode)
    return 0.0 if math.isnan(value) else value


def _text(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return "" if value is None else str(value)


def _common_parent(paths: Sequence[Path]) -> Path | None:
    import os

    try:
        common = Path(os.path.commonpath([str(p) for p in paths]))
    except ValueError:
        return None
    return common.parent if len(paths) == 1 else common


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
