"""Mask R-CNN learns the synthetic instances: mask AP rises well above an untrained model's."""

from __future__ import annotations

import csv
import json
import os

import pytest

from tests.integration.test_train_cli import run_train


@pytest.mark.slow
def test_maskrcnn_mask_ap_rises_on_synthetic_instances(tmp_path):
    # 200 steps at batch 4 (12-17 minutes on 2 CPU cores). Measured on 2026-11-22:
    # val/mask_map 0.012 after 50 steps, 0.113 after 100, 0.159 after 150, 0.196 after 200
    # (test/mask_map 0.157); an untrained model scores 0.
    run_dir = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    run_train(
        "model=maskrcnn",
        "data.train_size=800",
        "data.val_size=100",
        "data.batch_size=4",
        "trainer.max_epochs=1",
        "trainer.val_check_interval=50",
        "trainer.enable_progress_bar=false",
        "test=false",
        f"hydra.run.dir={run_dir}",
        env=env,
    )
    with open(run_dir / "csv" / "metrics.csv") as f:
        maps = [float(r["val/mask_map"]) for r in csv.DictReader(f) if r.get("val/mask_map")]
    assert maps[0] < 0.05, maps  # after 50 steps: barely started
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["val/mask_map"] >= 0.12, maps
