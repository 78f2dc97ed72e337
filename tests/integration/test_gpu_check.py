"""The GPU check's CPU dry run (`experiments/gpu/check.py --device cpu --quick`): every step
runs and records its numbers, so the script that runs on a lent GPU machine cannot rot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "experiments" / "gpu" / "check.py"


def test_cpu_dry_run_runs_every_step_and_writes_its_numbers(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    log = (out / "check.log").read_text() if (out / "check.log").exists() else ""
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:] + log[-5000:]
    result = json.loads((out / "gpu_check.json").read_text())
    steps = result["steps"]
    assert list(steps) == [
        "default_recipe", "clipping", "ddp", "eval_predict_export", "matmul_peak",
        "overhead_mfu", "loader",
    ]  # fmt: skip
    assert all(step["ok"] and step["seconds"] >= 0 for step in steps.values())
    recipe = steps["default_recipe"]
    assert recipe["images_per_s"] > 0 and 0 <= recipe["val_miou"] <= 1
    assert recipe["precision"] == result["environment"]["precision_auto"]
    assert set(steps["clipping"]) >= {
        "maskrcnn",
        "hung2018",
        "pix2pix",
        "unet_fp16_fused",
        "unimatch_ema",
        "fixmatch_hung2018",
    }
    assert steps["ddp"]["strategy"] == "trainer=ddp_cpu"
    # eval of the recipe's best checkpoint reproduces the run's validation mIoU
    assert abs(steps["eval_predict_export"]["eval_val_miou"] - recipe["val_miou"]) < 1e-3
    assert steps["eval_predict_export"]["predicted_files"] == 4
    assert "argmax agreement" in steps["eval_predict_export"]["onnx_check"]
    assert steps["matmul_peak"]["bf16_tflops"] > 0
    overhead = steps["overhead_mfu"]
    assert overhead["segkit_over_plain_speed"] > 0 and overhead["mfu_pct"] > 0
    assert overhead["model_tflop_per_step"] > 0
    assert steps["loader"]["loader_over_gpu"] > 0
    assert result["versions"]["hydra"] != "missing"


def test_a_missing_module_is_reported_in_one_line_before_anything_runs(tmp_path):
    shadow = tmp_path / "shadow" / "pycocotools"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('not installed here')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "shadow")}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu-check: missing: pycocotools.coco")
    assert "make gpu-wheels" in lines[0]
    assert not (tmp_path / "o").exists()  # nothing ran
