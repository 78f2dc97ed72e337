"""Checks of a composed config that run before torch is imported, so a bad value costs
a second, not a training start. Each failure is one line naming the key, the value and what
is accepted.

One module per concern: `common` (the error, required keys, extras), `data`, `model`,
`trainer` and `loggers`; `check_train_config` runs them all.
"""

from __future__ import annotations

from omegaconf import DictConfig

from segkit.run.config_checks.common import (
    ConfigError,
    check_required,
    require_extra,
)
from segkit.run.config_checks.data import (
    check_consistency_data,
    check_data_config,
    check_domain_adaptation,
)
from segkit.run.config_checks.loggers import (
    TENSORBOARD_LOGGER_TARGET,
    WANDB_LOGGER_TARGET,
    check_logger_config,
    wandb_logger_config,
)
from segkit.run.config_checks.model import (
    check_method_discriminator,
    check_pretrained,
    method_class,
    preset_name,
)
from segkit.run.config_checks.trainer import check_trainer_config
from segkit.run.facts import num_classes, task_family

__all__ = [
    "TENSORBOARD_LOGGER_TARGET",
    "WANDB_LOGGER_TARGET",
    "ConfigError",
    "check_data_config",
    "check_required",
    "check_train_config",
    "method_class",
    "preset_name",
    "require_extra",
    "wandb_logger_config",
]


def check_train_config(cfg: DictConfig) -> None:
    """Raise `ConfigError` for the first invalid value found in a training config."""
    check_data_config(cfg)
    data, model = cfg.data, cfg.model
    task = data.get("task", "semantic")
    family = task_family(cfg)
    classes = num_classes(data, family)
    net = model.get("net")
    for key, node, name in (
        ("model.num_classes", model, "num_classes"),
        ("model.net.classes", net or {}, "classes"),
        ("model.net.num_classes", net or {}, "num_classes"),
        ("model.discriminator.num_classes", model.get("discriminator") or {}, "num_classes"),
    ):
        if name in node and node[name] != classes:
            raise ConfigError(
                f"{key}={node[name]} differs from the data's {classes} classes: "
                "leave it as configured (from the data config) or change both"
            )
    semantic_model = family != "instance"
    if semantic_model and not cfg.get("loss"):
        raise ConfigError("loss=none: semantic models need a loss (e.g. loss=ce)")
    if task == "instance" and semantic_model:
        raise ConfigError(
            f"data={data._target_.rsplit('.', 1)[-1]} with data.task=instance gives instance "
            "samples, which semantic models cannot train on: use an instance model, or "
            "data.task=semantic where the dataset has it"
        )
    if family == "adversarial":
        check_method_discriminator(model)
    check_pretrained(model)
    check_domain_adaptation(cfg)
    if model.get("consistency") is not None:
        check_consistency_data(data)
    if family in ("adversarial", "adaptation") and cfg.trainer.get("gradient_clip_val"):
        raise ConfigError(
            f"trainer.gradient_clip_val={cfg.trainer.gradient_clip_val}: Lightning does not clip "
            f"for {family} models (manual optimization); set model.gradient_clip_val instead"
        )
    check_trainer_config(cfg.trainer)
    check_logger_config(cfg.get("logger") or {})
    for key in ("limit_train_batches", "max_steps"):
        # Evaluating without training is fine; a schedule over 0 steps fails inside PyTorch.
        if cfg.trainer.get(key) == 0 and cfg.get("scheduler"):
            raise ConfigError(
                f"trainer.{key}=0 with a learning-rate schedule: it needs at least one step "
                "(add scheduler=none to evaluate without training)"
            )
