"""Adversarial model configs: any semantic network as the segmenter, each method's settings."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from segkit.models import discriminators
from segkit.run.build import task_config
from segkit.run.config_checks import ConfigError, check_train_config
from segkit.tasks.adversarial import AdversarialSegmentation
from tests.unit.test_model_zoo import build_task


@pytest.mark.parametrize(
    ("overrides", "semantic_model", "method", "discriminator"),
    [
        (["model=unet_gan"], "unet", "luc2016", "PairDiscriminator"),
        (["model=deeplabv3plus_gan"], "deeplabv3plus", "luc2016", "PairDiscriminator"),
        (["model=fcn_gan"], "fcn", "luc2016", "PairDiscriminator"),
        (["model=pix2pix"], "unet", "pix2pix", "PatchDiscriminator"),
        (
            ["model=gan", "model/segmenter=fpn", "model/method=hung2018"],
            "fpn",
            "hung2018",
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
    assert OmegaConf.to_container(cfg.model.segmenter) == OmegaConf.to_container(semantic.model.net)
    assert isinstance(task, AdversarialSegmentation)
    assert task.hparams.method == method
    assert type(task.discriminator) is getattr(discriminators, discriminator)
    assert type(task.net) is type(semantic_task.net)
    logits = task(torch.zeros(2, 3, 64, 64))
    assert logits.shape == (2, cfg.data.num_classes, 64, 64)
    # The discriminator optimizer is built with the method's settings.
    d_opt = task.d_optimizer_factory(model=task.discriminator)
    assert d_opt.defaults["lr"] == cfg.model.d_optimizer.lr


def test_hung2018_config_has_the_papers_defaults(compose_train):
    cfg, task = build_task(compose_train, "model=unet_gan", "model/method=hung2018")
    hp = task.hparams
    assert (hp.adv_weight, hp.adv_weight_unlabeled, hp.semi_weight) == (0.01, 0.001, 0.1)
    assert hp.semi_threshold == 0.2
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
        (["model=unet_gan", "model.segmenter.classes=3"], "model.segmenter.classes=3"),
        (["model=unet_gan", "loss=none"], "need a loss"),
        (["model=unet_gan", "trainer.gradient_clip_val=1"], "set model.gradient_clip_val"),
    ],
)
def test_bad_gan_configs_are_refused(compose_train, overrides, message):
    with pytest.raises(ConfigError, match=message):
        check_train_config(compose_train(*overrides))


def test_a_method_with_a_discriminator_it_cannot_use_is_refused_before_training(compose_train):
    # model.method=hung2018 renames luc2016's preset, keeping its image-level discriminator.
    cfg = compose_train("model=unet_gan", "model.method=hung2018")
    with pytest.raises(ConfigError, match=r"model/method=hung2018"):
        check_train_config(cfg)
    for method in ("luc2016", "hung2018", "pix2pix"):  # each preset passes
        check_train_config(compose_train("model=unet_gan", f"model/method={method}"))
    # luc2016 and pix2pix train against any discriminator, Hung et al.'s map included.
    check_train_config(
        compose_train("model=unet_gan", "model/method=hung2018", "model.method=luc2016")
    )
