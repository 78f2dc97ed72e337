"""experiments/domain_adaptation/study.py end to end on a tiny grid: every cell runs once,
results.json/.md/.png are written, and a second invocation redoes no finished run; its
runs re-scored with target batch-norm statistics (target_statistics.py)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parents[2] / "experiments" / "domain_adaptation"
STUDY = HERE / "study.py"


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

    rescored = subprocess.run(
        [sys.executable, str(HERE / "target_statistics.py"), "--results", str(tmp_path / "r.json"),
         "--out", str(tmp_path / "runs"), "--images", "8", "--batch-size", "4"],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert rescored.returncode == 0, rescored.stderr[-3000:]
    rows = json.loads((tmp_path / "r_target_bn.json").read_text())
    assert [(r["method"], r["seed"]) for r in rows] == [(r["method"], r["seed"]) for r in runs]
    assert all(0.0 <= r["own"] <= 1.0 and 0.0 <= r["target"] <= 1.0 for r in rows)
    assert "| advent |" in (tmp_path / "r_target_bn.md").read_text()


def test_target_statistics_are_the_mean_over_the_target_images():
    spec = importlib.util.spec_from_file_location(
        "target_statistics", HERE / "target_statistics.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    images = torch.randn(12, 3, 5, 5) * 3 + 2
    adapted = module.with_target_statistics(net, images, batch_size=4)
    features = net[0](images).detach()
    torch.testing.assert_close(adapted[1].running_mean, features.mean((0, 2, 3)))
    batch_vars = [features[i : i + 4].var((0, 2, 3)) for i in (0, 4, 8)]  # unbiased, per batch
    torch.testing.assert_close(adapted[1].running_var, torch.stack(batch_vars).mean(0))
    assert torch.equal(adapted[0].weight, net[0].weight) and net[1].running_mean.abs().sum() == 0
