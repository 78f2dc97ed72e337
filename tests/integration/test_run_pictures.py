"""Pictures in the run dir whatever the logger: a 2-epoch `logger=csv` run writes a sample
grid per epoch (whose prediction changes as the model trains), the confusion matrix and the
per-class IoU of the best checkpoint."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
from PIL import Image

from tests.conftest import TINY_OVERRIDES
from tests.integration.test_train_cli import CLASSES, run_train


def test_csv_run_writes_sample_grids_confusion_matrix_and_per_class_iou(tmp_path):
    run_dir = tmp_path / "run"
    run_train(*TINY_OVERRIDES, "trainer.max_epochs=2", "logger=csv", f"hydra.run.dir={run_dir}")

    grids = sorted((run_dir / "samples").iterdir())
    assert [g.name for g in grids] == ["epoch_000.png", "epoch_001.png"]
    first, second = (np.asarray(Image.open(g)) for g in grids)
    assert first.shape == second.shape and first.shape[2] == 3
    assert first.shape[0] > 4 * 128 and first.std() > 10  # 4 rows of 128 px tiles, not blank
    assert not np.array_equal(first, second)  # the predictions moved between epochs

    confusion = Image.open(run_dir / "confusion_matrix.png")
    assert confusion.size[0] > 200 and np.asarray(confusion).std() > 10
    metrics = json.loads((run_dir / "metrics.json").read_text())
    with open(run_dir / "per_class_iou.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["class"] for r in rows] == list(CLASSES)
    for row in rows:  # the same scores as metrics.json (empty: a class absent from both)
        expected = metrics[f"val/iou/{row['class']}"]
        if row["iou"]:
            assert abs(float(row["iou"]) - expected) < 1e-5
        else:
            assert expected is None or math.isnan(expected)
    assert (run_dir / "test_confusion_matrix.png").is_file()
    assert (run_dir / "test_per_class_iou.csv").is_file()
    assert not (run_dir / "wandb").exists()
