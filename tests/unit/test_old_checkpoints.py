"""Checkpoints written by earlier segkit versions still load, predict and evaluate as they did
when written: before the package layout changed (tests/fixtures/checkpoints_c4a9064), before
domain-adaptation methods became objects (tests/fixtures/checkpoints_8d5fc31) and while
gan/semi/adapt models kept their network at model.segmenter (those two and
tests/fixtures/checkpoints_1b4e6ce); see their READMEs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import segkit
from segkit.run.compose import compose_config

FIXTURE_ROOT = Path(__file__).parents[1] / "fixtures"
#: The first folder's checkpoints and scene, which other tests use too.
FIXTURES = FIXTURE_ROOT / "checkpoints_c4a9064"
SCENE = FIXTURES / "scene.png"
#: (fixture folder, checkpoint name, task family)
CHECKPOINTS = [
    ("checkpoints_c4a9064", "unet", "semantic"),
    ("checkpoints_c4a9064", "unet_gan", "adversarial"),
    ("checkpoints_8d5fc31", "dacs", "adaptation"),
    ("checkpoints_1b4e6ce", "semi", "semantic"),
]


@pytest.mark.parametrize(("folder", "name", "family"), CHECKPOINTS)
def test_an_old_checkpoint_predicts_what_it_predicted_when_written(folder, name, family):
    model = segkit.load(FIXTURE_ROOT / folder / f"{name}.ckpt", device="cpu", precision="32-true")
    assert model.family == family
    got = model.predict(SCENE)
    expected = np.asarray(Image.open(FIXTURE_ROOT / folder / f"{name}_scene_index.png"))
    assert got.shape == expected.shape == (64, 96)
    # fp32 on another CPU may round differently: a near-tied pixel may flip, no more.
    assert (got == expected).mean() > 0.995


@pytest.mark.parametrize(("folder", "name", "family"), CHECKPOINTS)
def test_an_old_checkpoint_evaluates_to_its_recorded_metrics(folder, name, family, tmp_path):
    from segkit.eval import evaluate

    ckpt = FIXTURE_ROOT / folder / f"{name}.ckpt"
    overrides = [f"ckpt_path={ckpt}", "precision=32-true", "device=cpu"]
    cfg = compose_config("eval", [*overrides, f"output_dir={tmp_path}", "num_workers=0"])
    metrics = evaluate(cfg, None)
    recorded = json.loads((FIXTURE_ROOT / folder / f"{name}_eval_32-true.json").read_text())
    assert metrics["val/miou"] == pytest.approx(recorded["val/miou"], abs=2e-3)
    assert metrics["val/acc"] == pytest.approx(recorded["val/acc"], abs=2e-3)
