"""conf/experiment presets: each composes into the published recipe it names, its network
accepts the recipe's crop and full image sizes, and a preset runs end to end (shrunk)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from segkit.models.input_size import check_input_size
from segkit.run.compose import CONF_DIR
from tests.integration.test_train_cli import run_train

PRESETS = sorted(p.stem for p in (Path(CONF_DIR) / "experiment").glob("*.yaml"))
EXPECTED = {  # preset: (model target, iterations, per-GPU batch, aux weight)
    "cityscapes_deeplabv3plus_r50": ("segmentation_models_pytorch.DeepLabV3Plus", 80000, 2, None),
    "cityscapes_fcn_r50": (
        "segkit.models.torchvision_segmenter.TorchvisionSegmenter",
        80000,
        2,
        0.4,
    ),
    "cityscapes_unet": ("segmentation_models_pytorch.Unet", 160000, 4, None),
}


def test_every_preset_is_checked():
    assert set(PRESETS) == set(EXPECTED)


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_pins_the_published_recipe(compose_train, cityscapes_root, preset):
    cfg = compose_train(f"experiment={preset}", f"data.root={cityscapes_root}")
    OmegaConf.resolve(cfg)
    target, steps, batch, aux = EXPECTED[preset]
    assert cfg.model.net._target_ == target
    assert cfg.data._target_ == "segkit.data.cityscapes.CityscapesDataModule"
    assert list(cfg.data.crop_size) == [512, 1024] and list(cfg.data.image_size) == [1024, 2048]
    assert cfg.data.batch_size == batch and cfg.trainer.devices == 4
    assert cfg.trainer.sync_batchnorm is True
    assert (cfg.trainer.max_steps, cfg.trainer.max_epochs) == (steps, -1)
    assert cfg.optimizer.optimizer == "torch.optim.SGD"
    assert (cfg.optimizer.lr, cfg.optimizer.momentum, cfg.optimizer.weight_decay) == (
        0.01,
        0.9,
        5.0e-4,
    )
    assert cfg.scheduler._target_ == "segkit.optim.poly_with_warmup"
    assert cfg.scheduler.power == 0.9 and cfg.scheduler.min_lr_ratio * cfg.optimizer.lr == 1e-4
    assert cfg.loss._target_ == "segkit.losses.CrossEntropy"
    if aux is not None:
        assert cfg.model.aux_loss_weight == aux
    # The network (without its pretrained weights here) accepts crops and full images.
    net_cfg = OmegaConf.to_container(cfg.model.net)
    for key in ("encoder_weights", "weights_backbone"):
        if key in net_cfg:
            net_cfg[key] = None
    net = instantiate(net_cfg)
    check_input_size(net, list(cfg.data.crop_size), "data.crop_size")
    check_input_size(net, list(cfg.data.image_size), "data.image_size")


def test_a_preset_trains_end_to_end_on_the_official_layout(tmp_path, cityscapes_root):
    run_dir = tmp_path / "run"
    proc = run_train(
        "experiment=cityscapes_fcn_r50",
        f"data.root={cityscapes_root}",
        "model.net.weights_backbone=null",  # no ImageNet file on the test machine
        "data.crop_size=[64,64]",
        "data.image_size=[64,128]",
        "data.num_workers=0",
        "trainer.devices=1",
        "trainer.max_steps=2",
        "trainer.val_check_interval=2",
        "trainer.enable_progress_bar=false",
        f"hydra.run.dir={run_dir}",
    )
    assert "test/miou" not in proc.stdout  # Cityscapes has no labelled test split
    assert "no labelled test split: test skipped" in proc.stdout
    assert "val/miou" in proc.stdout
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()
