"""`python -m segkit.train` in a subprocess: run dir, checkpoints, metrics.json, exit codes."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from segkit.data.scenes import CLASS_NAMES
from segkit.run.checkpoints import CONFIG_KEY
from tests.conftest import TINY_OVERRIDES

CLASSES = CLASS_NAMES[:5]  # the default data config's classes


def run_train(*args: str, cwd: Path | None = None, env: dict | None = None, check=True):
    proc = subprocess.run(
        [sys.executable, "-m", "segkit.train", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
    )
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_train_run_writes_run_dir_checkpoints_and_metrics(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_train(
        *TINY_OVERRIDES,
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=1",
        "trainer.log_every_n_steps=1",
        "seed=1",
        f"hydra.run.dir={run_dir}",
    )

    assert "segkit: training finished" in proc.stdout
    assert str(run_dir / "checkpoints" / "best.ckpt") in proc.stdout
    metrics = json.loads((run_dir / "metrics.json").read_text())
    expected = {f"{s}/{k}" for s in ("val", "test") for k in ("loss", "miou", "acc", "macc")}
    expected |= {f"{s}/{m}/{c}" for s in ("val", "test") for m in ("iou", "acc") for c in CLASSES}
    assert set(metrics) == expected
    assert 0.0 <= metrics["val/miou"] <= 1.0

    config_text = (run_dir / ".hydra" / "config.yaml").read_text()
    assert "${" not in config_text  # resolved
    assert "seed: 1" in config_text
    with open(run_dir / "csv" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    validated = [row["epoch"] for row in rows if row.get("val/miou")]
    assert validated == ["0", "1"]  # one row per validation: the best is not logged twice
    # The learning rate of each parameter group, every step (LearningRateMonitor).
    lrs = {k for row in rows for k, v in row.items() if k.startswith("lr-AdamW") and v}
    assert {"lr-AdamW/encoder", "lr-AdamW/decoder"} <= lrs

    # Quiet by default: no Lightning product tip, no FLOPs column, no pytree deprecation.
    for noise in ("litlogger", "FLOPs", "Total Flops", "LeafSpec", "wandb: "):
        assert noise not in proc.stdout + proc.stderr, noise

    # The checkpoint loads safely and rebuilds the network without any config file; the best
    # keeps no optimizer state (last.ckpt keeps it, to resume).
    ckpt = torch.load(run_dir / "checkpoints" / "best.ckpt", weights_only=True)
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert "optimizer_states" not in ckpt and last["optimizer_states"]
    best_bytes = (run_dir / "checkpoints" / "best.ckpt").stat().st_size
    assert best_bytes < 0.5 * (run_dir / "checkpoints" / "last.ckpt").stat().st_size
    net = instantiate(ckpt[CONFIG_KEY]["model"]["net"])
    state = {
        k.removeprefix("net."): v for k, v in ckpt["state_dict"].items() if k.startswith("net.")
    }
    net.load_state_dict(state)  # strict: every key matches
    assert ckpt["hyper_parameters"]["class_names"] == list(CLASSES)

    # provenance.json: the command as typed, the resolved precision; the same in checkpoints.
    record = json.loads((run_dir / "provenance.json").read_text())
    assert record["command"].startswith("python -m segkit.train ") and "seed=1" in record["command"]
    assert record["precision"] in ("32-true", "bf16-mixed")  # whatever `auto` means here
    assert ckpt["segkit_provenance"] == record


def test_cfg_job_prints_config_without_importing_torch(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "segkit.train",
            "--cfg",
            "job",
            "trainer.max_epochs=2",
            "data.batch_size=4",
            "model.net.encoder_name=resnet34",
            "seed=1",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()}
    assert "torch" not in imported and "lightning" not in imported
    for line in ("max_epochs: 2", "batch_size: 4", "encoder_name: resnet34", "seed: 1"):
        assert line in proc.stdout


def test_help_lists_config_groups(tmp_path):
    proc = run_train("--help", cwd=tmp_path)
    groups = dict(line.split(": ", 1) for line in proc.stdout.splitlines() if line.count(": ") == 1)
    assert "unet" in groups["model"].split(", ")
    assert "deeplabv3plus" in groups["model"].split(", ")
    assert "ce_dice" in groups["loss"].split(", ")
    assert {"synthetic", "cityscapes"} <= set(groups["data"].split(", "))


def test_unknown_option_is_one_line_with_the_options_not_a_traceback(tmp_path):
    proc = run_train("model=nope", f"hydra.run.dir={tmp_path / 'r'}", check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith(
        "segkit: config error: model=nope: no option 'nope' in the model group; (options: adapt,"
    )
    assert "unet" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.batch_size=0", "data.batch_size=0 is invalid: expected a positive integer"),
        (
            "model=fpn data.image_size=100",
            "multiples of 32 (its encoder's output stride); nearest valid sizes: 96, 128",
        ),
        (
            "model=deeplabv3plus data.image_size=72",
            "multiples of 16 (its encoder's output stride); nearest valid sizes: 64, 80",
        ),
        ("data.difficulty=3", "data: difficulty=3 is invalid: expected 0..1"),
    ],
)
def test_invalid_value_ends_with_one_clear_line(tmp_path, override, message):
    proc = run_train(*override.split(), f"hydra.run.dir={tmp_path / 'r'}", check=False)
    assert proc.returncode == 2
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("segkit: config error:")]
    assert message in line
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "r" / "checkpoints").exists()


def test_wheel_ships_configs_and_trains_from_any_directory(tmp_path):
    root = Path(__file__).resolve().parents[2]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "dist"),
            str(root),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (tmp_path / "dist").glob("segkit-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {n for n in names if n.startswith("segkit/conf/") and n.endswith(".yaml")}
    in_repo = {str(p.relative_to(root)) for p in (root / "segkit" / "conf").rglob("*.yaml")}
    assert shipped == in_repo
    # A wheel is a zip of the installed layout: unpacked, it is a non-editable install.
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run(
        [sys.executable, "-c", "import segkit; print(segkit.__file__)"],
        capture_output=True,
        text=True,
        cwd=elsewhere,
        env=env,
        check=True,
    )
    assert where.stdout.startswith(str(site))
    run_train(*TINY_OVERRIDES, "hydra.run.dir=run", cwd=elsewhere, env=env)
    assert (elsewhere / "run" / "metrics.json").is_file()


def test_debug_presets_compose_to_one_cpu_process_with_everything_shown(compose_train):
    from segkit.run.config_checks import check_train_config

    expected = {"fdr": ("fast_dev_run", True), "limit": ("limit_train_batches", 0.01),
                "overfit": ("overfit_batches", 3), "profiler": ("profiler", "simple"),
                "default": ("detect_anomaly", True)}  # fmt: skip
    for preset, (key, value) in expected.items():
        cfg = compose_train(f"debug={preset}")
        check_train_config(cfg)
        assert (cfg.trainer.accelerator, cfg.trainer.devices, cfg.data.num_workers) == (
            "cpu", 1, 0,
        ), preset  # fmt: skip
        assert cfg.verbose and list(cfg.logger) == ["csv"] and not cfg.test, preset
        assert cfg.trainer[key] == value, preset


def test_debug_fdr_runs_one_batch_of_each_split(tmp_path):
    proc = run_train("debug=fdr", "data.train_size=8", "data.val_size=4", "data.image_size=64",
                     f"hydra.run.dir={tmp_path / 'r'}")  # fmt: skip
    assert "Running in `fast_dev_run` mode: will run the requested loop using 1 batch" in (
        proc.stdout + proc.stderr
    )
    assert "segkit: training finished" in proc.stdout
