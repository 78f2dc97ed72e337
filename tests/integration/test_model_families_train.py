"""One short `python -m segkit.train` run per model family, each with a non-default recipe:
torchvision (auxiliary head) and smp (local pretrained encoder), losses with auto class weights,
SGD with an encoder learning-rate multiplier, poly and cosine schedules with warm-up."""

from __future__ import annotations

import csv
import json

import torch
import torchvision
from omegaconf import OmegaConf

from tests.conftest import TINY_OVERRIDES
from tests.integration.test_train_cli import run_train


def test_torchvision_fcn_with_auto_class_weights_and_poly(tmp_path):
    run_dir = tmp_path / "run"
    run_train(
        *TINY_OVERRIDES,
        "model=fcn",
        "loss=ce_dice",
        "loss.terms.ce.loss.class_weights=auto",
        "optimizer=sgd",
        "optimizer.encoder_lr_mult=0.1",
        "scheduler=poly",
        "scheduler.warmup_iters=1",
        "trainer.log_every_n_steps=1",
        f"hydra.run.dir={run_dir}",
    )
    cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    weights = list(cfg.loss.terms.ce.loss.class_weights)  # numbers, not "auto"
    assert len(weights) == 5 and all(w >= 0 for w in weights) and sorted(weights)[2] == 1.0
    assert (
        "class weights (median frequency, training set): background="
        in (run_dir / "train.log").read_text()
    )
    with open(run_dir / "csv" / "metrics.csv") as f:
        columns = set(next(csv.reader(f)))
    assert {"train/loss", "train/loss/aux", "train/loss/ce", "train/loss/dice"} <= columns
    assert json.loads((run_dir / "metrics.json").read_text())["val/miou"] is not None


def test_smp_deeplabv3plus_from_a_local_encoder_file(tmp_path):
    weights = tmp_path / "resnet18_imagenet.pth"
    torch.save(torchvision.models.resnet18().state_dict(), weights)
    run_dir = tmp_path / "run"
    proc = run_train(
        *TINY_OVERRIDES,
        "model=deeplabv3plus",
        f"model.pretrained={weights}",
        "scheduler=cosine",
        "scheduler.warmup_iters=1",
        "loss=lovasz",
        f"hydra.run.dir={run_dir}",
    )
    assert f"loaded 120 tensors from {weights} into the encoder" in proc.stdout
    assert "2 unexpected (in the file only, ignored): fc.weight, fc.bias" in proc.stdout
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()


def test_missing_pretrained_file_is_one_config_error(tmp_path):
    proc = run_train(
        *TINY_OVERRIDES,
        f"model.pretrained={tmp_path / 'nope.pth'}",
        f"hydra.run.dir={tmp_path / 'run'}",
        check=False,
    )
    assert proc.returncode == 2
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("segkit: config error:")]
    assert line.endswith(f"pretrained weights file {tmp_path / 'nope.pth'} does not exist")
    assert not (tmp_path / "run" / "checkpoints").exists()
