"""Invalid values are refused before training with one line naming the key."""

from __future__ import annotations

import pytest

from segkit.run.config_checks import ConfigError, check_train_config


def test_default_config_passes(compose_train):
    check_train_config(compose_train())


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.batch_size=0", r"data.batch_size=0 is invalid: expected a positive integer"),
        ("data.num_classes=3", r"data.class_names has 5 entries but data.num_classes=3"),
        ("model.net.classes=7", r"model.net.classes=7 differs from the data's 5 classes"),
        ("loss=none", r"loss=none: semantic models need a loss"),
        ("model=maskrcnn", None),
        ("model=maskrcnn model.net.num_classes=4", r"model.net.num_classes=4 differs"),
        ("trainer.max_epochs=0", r"trainer.max_epochs=0 is invalid"),
        ("model=fcn", None),
        ("model=fcn model.net.num_classes=3", r"model.net.num_classes=3 differs"),
        ("data.task=instance", r"data.task=instance gives instance samples, which semantic"),
        ("trainer=ddp_cpu trainer.sync_batchnorm=true", r"SyncBatchNorm runs on GPUs only"),
        ("trainer=ddp_cpu trainer.num_nodes=0", r"trainer.num_nodes=0 is invalid"),
        ("trainer=ddp trainer.num_nodes=2", None),
    ],
)
def test_bad_values_are_refused(compose_train, override, message):
    cfg = compose_train(*override.split())
    if message is None:
        check_train_config(cfg)
        return
    with pytest.raises(ConfigError, match=message):
        check_train_config(cfg)


def test_a_moved_key_on_the_command_line_is_named_with_its_new_place(tmp_path):
    from segkit.run.compose import CONF_DIR
    from segkit.run.group_choices import UnknownChoiceError, check_group_choices

    with pytest.raises(UnknownChoiceError, match=r"is now model.net.encoder_name: model.net.en"):
        check_group_choices(["model=unet_gan", "model.segmenter.encoder_name=resnet34"], CONF_DIR)
    with pytest.raises(UnknownChoiceError, match=r"model.method.semi_start=5$"):
        check_group_choices(["model=gan", "model.semi_start=5"], CONF_DIR)
    check_group_choices(["model=gan", "model.net.encoder_name=x", "model.seg_weight=2"], CONF_DIR)
    # A model config of one's own (from another config dir) may use any key.
    check_group_choices([f"hydra.searchpath=[file://{tmp_path}]", "model.threshold=1"], CONF_DIR)
