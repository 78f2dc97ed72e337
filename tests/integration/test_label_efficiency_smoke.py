"""experiments/label_efficiency/study.py end to end on a tiny grid: every cell runs once,
results.json/.md/.png are written, and a second invocation redoes no finished run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

STUDY = Path(__file__).resolve().parents[2] / "experiments" / "label_efficiency" / "study.py"


def run_study(tmp_path: Path) -> subprocess.CompletedProcess:
    tiny = ["data.train_size=16", "data.val_size=4", "data.image_size=32", "scheduler=poly"]
    return subprocess.run(
        [
            sys.executable, str(STUDY), "--iters", "4", "--batch-size", "4", "--seeds", "0",
            "--fractions", "0.5", "1.0", "--methods", "supervised", "fixmatch",
            "--out", str(tmp_path / "runs"), "--results", str(tmp_path / "r.json"),
            "--extra", *tiny,
        ],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
    )  # fmt: skip


def test_study_runs_its_grid_reports_and_resumes(tmp_path):
    first = run_study(tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    runs = json.loads((tmp_path / "r.json").read_text())["runs"]
    # fixmatch needs unlabeled images: not at fraction 1
    assert sorted((r["method"], r["fraction"]) for r in runs) == [
        ("fixmatch", 0.5), ("supervised", 0.5), ("supervised", 1.0)
    ]  # fmt: skip
    assert all(0.0 <= r["val_miou"] <= 1.0 and r["seconds"] > 0 for r in runs)
    fixmatch = next(r for r in runs if r["method"] == "fixmatch")
    assert "model.consistency.start=1" in fixmatch["command"]  # a quarter of the iterations
    report = (tmp_path / "r.md").read_text()
    assert "| fixmatch |" in report and "Mean wall-clock per run" in report
    assert (tmp_path / "r.png").stat().st_size > 0

    again = run_study(tmp_path)  # resumable: finished runs are not redone
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads((tmp_path / "r.json").read_text())["runs"] == runs
