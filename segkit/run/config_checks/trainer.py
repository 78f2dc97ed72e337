"""Checks of the ``trainer`` group: precision, accelerator, strategy, devices and counts."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from segkit.run.config_checks.common import ConfigError, positive_int

PRECISIONS = (
    "auto", "32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true",
    "transformer-engine", "transformer-engine-float16", "32", "16", "bf16", "64", 32, 16, 64,
)  # fmt: skip
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")
#: Strategy names of Lightning's registry (``ddp*``, ``deepspeed*``, ``fsdp*``, ``xla*``...).
STRATEGY_PREFIXES = ("auto", "ddp", "deepspeed", "fsdp", "single_device", "single_tpu",
                     "single_xla", "xla")  # fmt: skip


def check_trainer_options(trainer: DictConfig) -> None:
    """ConfigError for a ``precision``, ``accelerator``, ``devices`` or ``strategy`` the
    Trainer would refuse once built, naming the key and what it takes."""
    precision = trainer.get("precision", "auto")
    if precision not in PRECISIONS:
        shown = ", ".join(p for p in PRECISIONS if isinstance(p, str) and not p.isdigit())
        raise ConfigError(f"trainer.precision={precision!r} is invalid: expected one of {shown}")
    accelerator = trainer.get("accelerator", "auto")
    if accelerator not in ACCELERATORS:
        raise ConfigError(
            f"trainer.accelerator={accelerator!r} is invalid: expected one of "
            f"{', '.join(ACCELERATORS)}"
        )
    devices = trainer.get("devices", "auto")
    if not _valid_devices(devices):
        raise ConfigError(
            f"trainer.devices={devices!r} is invalid: expected auto, a positive count, -1 (all), "
            "or a list of device indices such as [0,1]"
        )
    strategy = trainer.get("strategy", "auto")
    if isinstance(strategy, str) and not strategy.startswith(STRATEGY_PREFIXES):
        raise ConfigError(
            f"trainer.strategy={strategy!r} is invalid: expected auto, ddp (ddp_spawn, "
            "ddp_find_unused_parameters_true, ...), fsdp, deepspeed, or a strategy config "
            "with a _target_ (trainer=ddp)"
        )


def _valid_devices(devices: Any) -> bool:
    """Lightning's ``devices``: "auto", a count >= 1, -1, "0,1", or a list of indices."""
    if OmegaConf.is_list(devices) or isinstance(devices, list):
        return len(devices) > 0 and all(isinstance(d, int) and d >= 0 for d in devices)
    if isinstance(devices, bool):
        return False
    if isinstance(devices, int):
        return devices >= 1 or devices == -1
    if isinstance(devices, str):
        parts = [p.strip() for p in devices.split(",") if p.strip()]
        return devices == "auto" or (bool(parts) and all(p.lstrip("-").isdigit() for p in parts))
    return False


def check_trainer_config(trainer: DictConfig) -> None:
    """Raise `ConfigError` for trainer settings Lightning would reject only once running."""
    check_trainer_options(trainer)
    max_epochs = trainer.get("max_epochs")
    if max_epochs is not None and not (max_epochs == -1 or max_epochs >= 1):
        raise ConfigError(
            f"trainer.max_epochs={max_epochs} is invalid: expected a positive integer or -1"
        )
    positive_int(trainer, "trainer", "num_nodes")
    if trainer.get("on_nonfinite", "error") not in ("error", "skip"):
        raise ConfigError(
            f"trainer.on_nonfinite={trainer.on_nonfinite!r} is invalid: expected error or skip"
        )
    if trainer.get("sync_batchnorm") and trainer.get("accelerator") == "cpu":
        raise ConfigError(
            "trainer.sync_batchnorm=true with trainer.accelerator=cpu: PyTorch's SyncBatchNorm "
            "runs on GPUs only; set trainer.sync_batchnorm=false for CPU training"
        )
