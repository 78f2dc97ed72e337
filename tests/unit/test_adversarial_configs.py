"""Adversarial model configs: any semantic network as the segmenter, each method's settings."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from segkit.models import discriminators
from segkit.run.build import task_config
from segkit.run.config_checks import ConfigError, check_train_config
from segkit.tasks.adversarial import AdversarialSegmentation
from segkit.tasks.methods.hung2018 import Hung2018
from segkit.tasks.methods.luc2016 import Luc2016
from segkit.tasks.methods.pix2pix import Pix2Pix
from tests.unit.test_model_zoo import build_task


@pytest.mark.parametrize(
    ("overrides", "semantic_model", "method", "discriminator"),
    [
        (["model=unet_gan"], "unet", Luc2016, "PairDiscriminator"),
        (["model=deeplabv3plus_gan"], "deeplabv3plus", Luc2016, "PairDiscriminator"),
        (["model=fcn_gan"], "fcn", Luc2016, "PairDiscriminator"),
        (["model=pix2pix"], "unet", Pix2Pix, "PatchDiscriminator"),
        (
            ["model=gan", "model/segmenter=fpn", "model/method=hung2018"],
            "fpn",
            Hung2018,
            "ConfidenceDiscriminator",
        ),
    ],
)
def test_gan_configs_reuse_the_semantic_network_config(
    compose_train, overrides, semantic_model, method, discriminator
):
    semantic, semantic_task = build_task(compose_train, f"model={semantic_model}")
    cfg, task = build_task(compose_train, *overrides)
    # The segmenter is the semantic model's network config, not a copy of it.
    assert OmegaConf.to_container(cfg.model.net) == OmegaConf.to_container(semantic.model.net)
    assert isinstance(task, AdversarialSegmentation)
    assert type(task.method) is method
    assert type(task.discriminator) is getattr(discriminators, discriminator)
    assert type(task.net) is type(semantic_task.net)
    logits = task(torch.zeros(2, 3, 64, 64))
    assert logits.shape == (2, cfg.data.num_classes, 64, 64)
    # The discriminator optimizer is built with the method's settings.
    d_opt = task.d_optimizer_factory(model=task.discriminator)
    assert d_opt.defaults["lr"] == cfg.model.d_optimizer.lr


def test_hung2018_config_has_the_papers_defaults(compose_train):
    cfg, task = build_task(compose_train, "model=unet_gan", "model/method=hung2018")
    method = task.method
    assert (method.adv_weight, method.adv_weight_unlabeled, method.semi_weight) == (
        0.01,
        0.001,
        0.1,
    )
    assert (method.semi_threshold, method.semi_start, task.hparams.seg_weight) == (0.2, 5000, 1.0)
    pix2pix = build_task(compose_train, "model=pix2pix")[1]
    assert (pix2pix.hparams.seg_weight, pix2pix.method.recon_loss) == (100.0, "l1")
    assert pix2pix.method.d_loss_weight == 0.5
    d = cfg.model.d_optimizer
    assert (d.optimizer, d.lr, list(d.betas)) == ("torch.optim.Adam", 1e-4, [0.9, 0.99])


def test_ddp_finds_unused_parameters_for_gan_models_only(compose_train):
    gan = compose_train("model=unet_gan", "trainer=ddp_cpu")
    plain = compose_train("model=unet", "trainer=ddp_cpu")
    assert gan.trainer.strategy.find_unused_parameters is True
    assert plain.trainer.strategy.find_unused_parameters is False
    assert "ddp_find_unused_parameters" not in task_config(gan.model)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model=unet_gan", "data.task=instance"], "semantic models cannot train"),
        (["model=unet_gan", "model.discriminator.num_classes=3"], "discriminator.num_classes=3"),
        (["model=unet_gan", "model.net.classes=3"], "model.net.classes=3"),
        (["model=unet_gan", "loss=none"], "need a loss"),
        (["model=unet_gan", "trainer.gradient_clip_val=1"], "set model.gradient_clip_val"),
    ],
)
def test_bad_gan_configs_are_refused(compose_train, overrides, message):
    with pytest.raises(ConfigError, match=message):
        check_train_config(compose_train(*overrides))


def test_a_method_with_a_discriminator_it_cannot_use_is_refused_before_training(compose_train):
    # Hung et al.'s class on luc2016's preset, which keeps its image-level discriminator.
    hung = "model.method._target_=segkit.tasks.methods.hung2018.Hung2018"
    with pytest.raises(ConfigError, match=r"Hung2018 needs a per-pixel.*model/method=hung2018"):
        check_train_config(compose_train("model=unet_gan", hung))
    with pytest.raises(ConfigError, match=r"model.method='hung2018' is invalid"):
        check_train_config(compose_train("model=unet_gan", "model.method=hung2018"))
    for method in ("luc2016", "hung2018", "pix2pix"):  # each preset passes
        check_train_config(compose_train("model=unet_gan", f"model/method={method}"))
    # luc2016 and pix2pix train against any discriminator, Hung et al.'s map included.
    luc = "model.method._target_=segkit.tasks.methods.luc2016.Luc2016"
    check_train_config(compose_train("model=unet_gan", "model/method=hung2018", luc))
