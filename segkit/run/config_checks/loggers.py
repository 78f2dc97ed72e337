"""Checks of the ``logger`` group: W&B's mode and log_model, TensorBoard's package."""

from __future__ import annotations

from omegaconf import DictConfig

from segkit.run.config_checks.common import ConfigError, require_extra

WANDB_LOGGER_TARGET = "segkit.tracking.wandb_logger.wandb_logger"


def wandb_logger_config(logger: DictConfig) -> DictConfig | None:
    """The entry of the ``logger`` group that builds the W&B logger, if the run has one."""
    for node in logger.values():
        if node.get("_target_") == WANDB_LOGGER_TARGET:
            return node
    return None


#: segkit's TensorBoard logger (needs tensorboardX or tensorboard: the tensorboard extra).
TENSORBOARD_LOGGER_TARGET = "segkit.tracking.tensorboard_logger.TensorBoardLogger"


def check_logger_config(logger: DictConfig) -> None:
    """Raise `ConfigError` for a W&B mode or log_model value wandb would reject mid-run, and
    for a TensorBoard logger without its package."""
    from segkit.tracking.wandb_mode import MODES

    targets = [str(node.get("_target_", "")) for node in logger.values()]
    if any(target.endswith(".TensorBoardLogger") for target in targets):  # Lightning's or ours
        try:  # Lightning writes event files with either package
            __import__("tensorboard")
        except ImportError:
            require_extra("tensorboard", ("tensorboardX",), "logger=tensorboard")

    wandb = wandb_logger_config(logger) or {}
    if "mode" in wandb and wandb.mode not in MODES:
        raise ConfigError(
            f"logger.wandb.mode={wandb.mode!r} is invalid: expected one of {', '.join(MODES)}"
        )
    if wandb.get("log_model") not in (None, True, False, "all"):
        raise ConfigError(
            f"logger.wandb.log_model={wandb.log_model!r} is invalid: expected false, true or all"
        )
