"""Checkpoints written before the package layout changed (tests/fixtures/checkpoints_c4a9064,
see its README) still load, predict and evaluate as they did when written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import segkit
from segkit.run.compose import compose_config

FIXTURES = Path(__file__).parents[1] / "fixtures" / "checkpoints_c4a9064"


@pytest.mark.parametrize("name", ["unet", "unet_gan"])
def test_an_old_checkpoint_predicts_what_it_predicted_when_written(name):
    model = segkit.load(FIXTURES / f"{name}.ckpt", device="cpu", precision="32-true")
    assert model.family == ("adversarial" if name == "unet_gan" else "semantic")
    got = model.predict(FIXTURES / "scene.png")
    expected = np.asarray(Image.open(FIXTURES / f"{name}_scene_index.png"))
    assert got.shape == expected.shape == (64, 96)
    # fp32 on another CPU may round differently: a near-tied pixel may flip, no more.
    assert (got == expected).mean() > 0.995


@pytest.mark.parametrize("name", ["unet", "unet_gan"])
def test_an_old_checkpoint_evaluates_to_its_recorded_metrics(name, tmp_path):
    from segkit.eval import evaluate

    overrides = [f"ckpt_path={FIXTURES / f'{name}.ckpt'}", "precision=32-true", "device=cpu"]
    cfg = compose_config("eval", [*overrides, f"output_dir={tmp_path}", "num_workers=0"])
    metrics = evaluate(cfg, None)
    recorded = json.loads((FIXTURES / f"{name}_eval_32-true.json").read_text())
    assert metrics["val/miou"] == pytest.approx(recorded["val/miou"], abs=2e-3)
    assert metrics["val/acc"] == pytest.approx(recorded["val/acc"], abs=2e-3)
