"""The Python API as the README shows it, the provenance every run records, and the `segkit`
command forwarding to the modules."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "checkpoints_c4a9064"


def readme_example() -> str:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture(scope="module")
def api_run(tmp_path_factory):
    """The README's example, run as written in a fresh directory; its namespace."""
    import os

    cwd = tmp_path_factory.mktemp("api")
    before = Path.cwd()
    os.chdir(cwd)
    try:
        namespace: dict = {}
        exec(compile(readme_example(), "README.md", "exec"), namespace)
    finally:
        os.chdir(before)
    namespace["run_dir"] = cwd / "runs" / "api_example"
    return namespace


def test_the_readme_example_trains_loads_and_predicts(api_run):
    run_dir = api_run["run_dir"]
    assert 0.0 <= api_run["metrics"]["val/miou"] <= 1.0
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["val/miou"] == pytest.approx(api_run["metrics"]["val/miou"])
    model = api_run["model"]
    assert model.family == "semantic" and len(model.class_names) == 5
    # A path gives what the same pixels give as an array.
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 72, 3), dtype=np.uint8)  # not a multiple of 32
    Image.fromarray(image).save(run_dir / "random.png")
    from_path = model.predict(run_dir / "random.png")
    assert from_path.shape == (40, 72) and from_path.dtype == np.int64
    assert (from_path == model.predict(image)).all()
    # Read as the training data was (segkit.data.image_reader): grey is repeated to RGB,
    # 16-bit scaled by its depth, a wrong channel count refused with both counts.
    grey = image[..., 0]
    assert (model.predict(grey) == model.predict(np.repeat(grey[..., None], 3, 2))).all()
    deep = grey.astype(np.uint16) * 257  # the same picture in 16 bits
    assert (model.predict(deep) == model.predict(grey)).mean() > 0.99
    with pytest.raises(ValueError, match=r"has 4 channels but data.in_channels=3"):
        model.predict(np.zeros((40, 72, 4), np.uint8))


def test_every_run_records_its_provenance_in_the_run_dir_and_checkpoints(api_run):
    from importlib import metadata

    record = json.loads((api_run["run_dir"] / "provenance.json").read_text())
    assert record["segkit"] == metadata.version("segkit")
    assert record["torch"] == metadata.version("torch")
    assert record["lightning"] == metadata.version("lightning")
    assert record["precision"] in ("32-true", "bf16-mixed")  # whatever `auto` means here
    assert record["device"]
    git = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    if git.returncode == 0:  # a checkout (CI clones one): the commit and a dirty flag
        assert record["git"]["sha"] == git.stdout.strip()
        assert isinstance(record["git"]["dirty"], bool)
    ckpt = torch.load(api_run["run_dir"] / "checkpoints" / "best.ckpt", weights_only=True)
    assert ckpt["segkit_provenance"] == record


def test_segkit_command_forwards_to_the_modules(tmp_path):
    segkit = Path(sys.executable).parent / "segkit"  # the console script beside this Python
    command = [str(segkit)] if segkit.is_file() else [sys.executable, "-m", "segkit"]
    out = subprocess.run(
        [*command, "predict", f"ckpt_path={FIXTURES / 'unet.ckpt'}",
         f"input={FIXTURES / 'scene.png'}", f"output={tmp_path}", "format=index",
         "precision=32-true", "device=cpu"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    written = np.asarray(Image.open(tmp_path / "scene.png"))
    expected = np.asarray(Image.open(FIXTURES / "unet_scene_index.png"))
    assert (written == expected).mean() > 0.995
    bad = subprocess.run([*command, "trian"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown command 'trian'" in bad.stderr


def test_fit_refuses_a_used_run_dir_and_api_runs_compare_by_their_keys(api_run, tmp_path):
    """Running the README's example again is refused (it would mix two runs in one dir);
    the API run records its group choices, so `segkit compare` names the keys that differ."""
    import shutil

    import segkit
    from segkit.run.config_checks import ConfigError
    from segkit.tracking.leaderboard import differing_columns, read_run

    run_dir = api_run["run_dir"]
    cfg = segkit.compose(["data.image_size=64", "trainer.max_epochs=1", "logger=csv"])
    with pytest.raises(ConfigError, match=r"already holds a run: continue it with ckpt_path="):
        segkit.fit(cfg, run_dir)
    assert not list((run_dir / "checkpoints").glob("*-v1.ckpt"))  # nothing of a second run
    hydra = (run_dir / ".hydra" / "hydra.yaml").read_text()
    assert "model: unet" in hydra and "data: synthetic" in hydra  # the group choices
    assert "data.train_size=8" in (run_dir / ".hydra" / "overrides.yaml").read_text()
    # A second run that differs in one key (as a CLI run would), and an API run made before
    # the choices were recorded: both compare by data.train_size, not by whole groups.
    other, old = tmp_path / "other", tmp_path / "old"
    shutil.copytree(run_dir, other)
    config = other / ".hydra" / "config.yaml"
    config.write_text(config.read_text().replace("train_size: 8", "train_size: 16"))
    shutil.copytree(other, old)
    (old / ".hydra" / "hydra.yaml").unlink()
    for pair in ((run_dir, other), (run_dir, old)):
        assert differing_columns([read_run(p, "val/miou") for p in pair]) == ["data.train_size"]


def test_predict_takes_a_list_and_refuses_floats_outside_0_1(api_run):
    model = api_run["model"]
    image = np.zeros((32, 48, 3), np.uint8)
    both = model.predict([image, image[:16]])
    assert isinstance(both, list) and [p.shape for p in both] == [(32, 48), (16, 48)]
    too_bright = np.linspace(0.0, 3.0, 32 * 48 * 3, dtype=np.float32).reshape(32, 48, 3)
    with pytest.raises(ValueError, match=r"values in \[0, 3\]: expected floats in \[0, 1\]"):
        model.predict(too_bright)
    with pytest.raises(ValueError, match=r"a batch \(2, 32, 48, 3\): pass a list"):
        model.predict(np.zeros((2, 32, 48, 3), np.uint8))
