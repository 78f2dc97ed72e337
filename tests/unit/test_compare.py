"""`segkit.compare` on run dirs written the way segkit writes them."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from segkit.compare import main
from segkit.tracking.leaderboard import find_run_dirs, leaderboard, read_run

CLASSES = ("background", "car")


def write_run(
    root: Path,
    name: str,
    model: str,
    lr: float,
    val_miou: list[float],
    epoch_s: list[float],
    seed: int = 0,
    test_miou: float | None = None,
) -> Path:
    """A run dir: resolved config, group choices, CSV log (with the evaluation of the best
    checkpoint logged again after training, as Lightning does) and metrics.json."""
    run = root / name
    (run / ".hydra").mkdir(parents=True)
    (run / "csv").mkdir()
    config = {
        "seed": seed,
        "model": {"net": {"arch": model}, "num_classes": 2},
        "optimizer": {"lr": lr},
        "paths": {"output_dir": str(run)},
        "logger": {"wandb": {"id": name}},
    }
    (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    choices = {"model": model, "model/segmenter@model.net": model, "loss": "ce", "hydra": "x"}
    (run / ".hydra" / "hydra.yaml").write_text(
        yaml.safe_dump({"hydra": {"runtime": {"choices": choices}}})
    )
    header = ["epoch", "step", "time/epoch_s", "val/miou"]
    rows = []
    for epoch, (miou, seconds) in enumerate(zip(val_miou, epoch_s, strict=True)):
        rows.append([epoch, epoch, "", miou])
        rows.append([epoch, epoch, seconds, ""])
    with open(run / "csv" / "metrics.csv", "w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    final = {"val/miou": max(val_miou), **{f"val/iou/{c}": max(val_miou) for c in CLASSES}}
    if test_miou is not None:
        final["test/miou"] = test_miou
    (run / "metrics.json").write_text(json.dumps(final))
    return run


@pytest.fixture
def sweep(tmp_path) -> Path:
    root = tmp_path / "multirun" / "2026-11-22" / "10-00-00"
    write_run(root, "0_unet", "unet", 1e-3, [0.2, 0.5, 0.4], [2.0, 1.0, 3.0], test_miou=0.45)
    write_run(root, "1_fpn", "fpn", 1e-3, [0.3, 0.6], [4.0, 5.0], test_miou=0.55)
    write_run(root, "2_unet", "unet", 1e-2, [0.1, 0.2], [2.0, 2.0])
    (root / "optimization_results.yaml").write_text("best_value: 0.6\n")
    return root


def test_leaderboard_rows_columns_and_order(sweep):
    runs = [read_run(p, "val/miou") for p in find_run_dirs([sweep])]
    header, rows, ordered = leaderboard(runs, "val/miou", "max")
    # model is a group choice: its keys (model.net.arch) are not repeated as columns; the
    # per-run paths, ids and the unchanged seed are not differences.
    assert header == [
        "run",
        "model",
        "optimizer.lr",
        "best val/miou",
        "test/miou",
        "epochs",
        "epoch s",
    ]
    assert rows == [
        ["1_fpn", "fpn", "0.001", "0.6", "0.55", "2", "4.5"],
        ["0_unet", "unet", "0.001", "0.5", "0.45", "3", "2"],
        ["2_unet", "unet", "0.01", "0.2", "", "2", "2"],
    ]
    assert ordered[0].path.name == "1_fpn"
    assert ordered[1].curve == [(0, 0.2), (1, 0.5), (2, 0.4)]


def test_min_mode_ranks_the_other_way(sweep):
    runs = [read_run(p, "val/miou") for p in find_run_dirs([sweep])]
    _, rows, _ = leaderboard(runs, "val/miou", "min")
    assert [r[0] for r in rows] == ["2_unet", "0_unet", "1_fpn"]


def test_cli_writes_markdown_csv_and_plots(sweep, capsys):
    assert main([str(sweep)]) == 0
    out = sweep / "comparison"
    printed = capsys.readouterr().out
    assert printed.splitlines()[0] == (
        "| run | model | optimizer.lr | best val/miou | test/miou | epochs | epoch s |"
    )
    assert (out / "leaderboard.md").read_text().splitlines()[2].startswith("| 1_fpn | fpn |")
    with open(out / "leaderboard.csv") as f:
        table = list(csv.reader(f))
    assert [r[0] for r in table] == ["run", "1_fpn", "0_unet", "2_unet"]
    for png in ("curves.png", "per_class_iou.png"):
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_run_dirs_given_one_by_one(sweep, tmp_path):
    out = tmp_path / "cmp"
    assert main([str(sweep / "0_unet"), str(sweep / "2_unet"), "--out", str(out)]) == 0
    header = (out / "leaderboard.csv").read_text().splitlines()[0]
    assert header == "run,optimizer.lr,best val/miou,test/miou,epochs,epoch s"


def test_dirs_without_runs_are_refused(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty")]) == 2
    assert "no segkit run dirs in it (a run dir has .hydra/config.yaml)" in capsys.readouterr().err
    assert main([str(tmp_path / "missing")]) == 2
    assert "missing: no such directory" in capsys.readouterr().err


def test_compare_starts_without_torch(sweep):
    code = (
        "import sys, segkit.compare as c; c.main([sys.argv[1], '--out', sys.argv[2]]);"
        "print('torch' in sys.modules)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(sweep), str(sweep / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("False")


def test_leaderboard_links_each_runs_latest_sample_grid(sweep):
    for epoch in (0, 2):
        grid = sweep / "0_unet" / "samples" / f"epoch_{epoch:03d}.png"
        grid.parent.mkdir(exist_ok=True)
        grid.write_bytes(b"\x89PNG\r\n\x1a\n")
    assert main([str(sweep)]) == 0
    lines = (sweep / "comparison" / "leaderboard.md").read_text().splitlines()
    assert lines[0].endswith("| epoch s | samples |")
    unet = next(line for line in lines if line.startswith("| 0_unet |"))
    # relative to leaderboard.md's dir, so the link opens where the table is read
    assert unet.endswith("| [epoch_002](../0_unet/samples/epoch_002.png) |")
    fpn = next(line for line in lines if line.startswith("| 1_fpn |"))
    assert fpn.endswith("|  |")  # a run without grids has an empty cell
