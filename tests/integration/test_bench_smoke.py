"""`make bench`'s harness (experiments/throughput) runs end to end: one tiny model, one
repetition. The figures are not asserted (they depend on the machine); the results files are."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "experiments" / "throughput" / "bench.py"
MODEL = "unet_resnet18"


def test_bench_smoke_writes_every_result(tmp_path):
    env = {**os.environ, "WANDB_MODE": "offline"}
    done = subprocess.run(
        [sys.executable, str(BENCH), "--smoke", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "results.json").read_text())

    assert set(result["overhead_ratio"]) == {MODEL}
    assert set(result["fastpath_speedup"]) == {MODEL}
    assert set(result["utilization_pct"][MODEL]) == {"fp32", "bf16"}
    assert set(result["startup_s"]) == {"help", "config_error", "first_step"}
    numbers = [
        result["overhead_ratio"][MODEL],
        result["fastpath_speedup"][MODEL],
        *result["utilization_pct"][MODEL].values(),
        *result["startup_s"].values(),
        result["peak_rss_mb"],
    ]
    assert all(isinstance(x, float) and x > 0 for x in numbers), numbers
    # The configured default resolves to a setting, and the plain fp32 loop is its own 1.0x.
    fastpath = result["rows"]["fastpath"][MODEL]
    assert fastpath["resolved"]["fp32_nchw"] == "32-true NCHW"
    assert fastpath["speedup_vs_fp32_nchw"]["fp32_nchw"]["median"] == 1.0
    # Loader rows for both pipelines, at their configured workers.
    loader = result["rows"]["loader"]
    assert loader["synthetic"]["num_workers"] == 0
    assert loader["cityscapes"]["num_workers"] == 4
    assert result["rows"]["overhead"][MODEL]["loggers"] == [
        "ContinuingCSVLogger",
        "SummaryWandbLogger",
    ]
    report = (tmp_path / "results.md").read_text()
    for heading in ("## Goals", "## 1. Framework overhead", "## 3. Machine limit", "## 5."):
        assert heading in report
    assert not list(tmp_path.glob("outputs")), "runs must not write into the working directory"
