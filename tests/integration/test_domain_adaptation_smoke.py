"""experiments/domain_adaptation/study.py end to end on a tiny grid: every cell runs once,
results.json/.md/.png are written, and a second invocation redoes no finished run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

STUDY = Path(__file__).resolve().parents[2] / "experiments" / "domain_adaptation" / "study.py"


def run_study(tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable, str(STUDY), "--iters", "4", "--batch-size", "4", "--train-size", "8",
            "--val-size", "4", "--image-size", "32", "--seeds", "0",
            "--methods", "source_only", "advent", "oracle",
            "--out", str(tmp_path / "runs"), "--results", str(tmp_path / "r.json"),
            "--extra", "scheduler=poly",
        ],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
    )  # fmt: skip


def test_study_runs_its_grid_reports_and_resumes(tmp_path):
    first = run_study(tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    runs = json.loads((tmp_path / "r.json").read_text())["runs"]
    assert sorted(r["method"] for r in runs) == ["advent", "oracle", "source_only"]
    assert all(0.0 <= r["val_miou"] <= 1.0 and r["seconds"] > 0 for r in runs)
    by_method = {r["method"]: r for r in runs}
    assert by_method["oracle"]["source_val_miou"] is None  # one domain: no source split
    assert 0.0 <= by_method["advent"]["source_val_miou"] <= 1.0
    assert "trainer.max_steps=8" in by_method["advent"]["command"]  # + discriminator steps
    assert "data=synthetic_shifted" in by_method["oracle"]["command"]
    report = (tmp_path / "r.md").read_text()
    assert "| advent |" in report and "share of the gap closed" in report
    assert (tmp_path / "r.png").stat().st_size > 0

    again = run_study(tmp_path)  # resumable: finished runs are not redone
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads((tmp_path / "r.json").read_text())["runs"] == runs
