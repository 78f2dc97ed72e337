"""`python -m segkit.train` with adversarial models: semi-supervised run, DDP run, checkpoints."""

from __future__ import annotations

import csv
import json
import math

import torch

from tests.conftest import TINY_OVERRIDES
from tests.integration.test_train_cli import run_train


def test_hung2018_semi_supervised_run(tmp_path):
    run_dir = tmp_path / "run"
    run_train(
        *TINY_OVERRIDES,
        "model=unet_gan",
        "model/method=hung2018",
        "model.method.semi_start=0",
        "data.train_size=16",
        "data.labeled_fraction=0.5",
        "trainer.log_every_n_steps=1",
        f"hydra.run.dir={run_dir}",
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0.0 <= metrics["val/miou"] <= 1.0 and "test/miou" in metrics
    split = json.loads((run_dir / "labeled_split.json").read_text())
    assert len(split["labeled"]) == len(split["unlabeled"]) == 8
    with open(run_dir / "csv" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    logged = {k for row in rows for k, v in row.items() if v}
    expected = {"train/seg_loss", "train/adv_loss", "train/d_loss", "train/semi_loss"}
    assert expected | {"train/d_real_acc", "train/d_fake_acc"} <= logged
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert len(ckpt["optimizer_states"]) == 2  # segmenter and discriminator
    # 2 batches, each a segmenter and a discriminator step.
    assert ckpt["global_step"] == 4
    assert {"net", "discriminator"} <= {k.split(".")[0] for k in ckpt["state_dict"]}


def test_gan_trains_under_ddp_on_two_cpu_processes(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_train(
        *TINY_OVERRIDES,
        "model=unet_gan",
        "trainer=ddp_cpu",
        "data.val_size=5",  # not divisible by the 2 processes
        f"hydra.run.dir={run_dir}",
    )
    assert proc.stdout.count("segkit: training finished") == 1
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert math.isfinite(metrics["val/miou"])
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert any(k.startswith("discriminator.") for k in ckpt["state_dict"])


def test_unet_gan_trains_on_the_cityscapes_layout(tmp_path, cityscapes_root):
    # The headline command, shrunk: python -m segkit.train model=unet_gan data=cityscapes
    run_dir = tmp_path / "run"
    proc = run_train(
        "model=unet_gan",
        "data=cityscapes",
        f"data.root={cityscapes_root}",
        "data.crop_size=[64,64]",
        "data.image_size=[64,128]",
        "data.batch_size=2",
        "data.num_workers=0",
        "trainer.max_steps=4",
        "trainer.enable_progress_bar=false",
        f"hydra.run.dir={run_dir}",
    )
    assert "val/miou" in proc.stdout
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert math.isfinite(metrics["val/miou"])
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
