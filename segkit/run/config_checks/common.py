"""What every config check shares: the error it raises and the small checks several use."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key and the accepted values."""


def check_required(cfg: DictConfig, *keys: str) -> None:
    """ConfigError naming the first of `keys` left at ``???`` (before anything heavy runs)."""
    for key in keys:
        if OmegaConf.is_missing(cfg, key):
            raise ConfigError(f"{key}=... is required (e.g. {key}={_EXAMPLES.get(key, 'VALUE')})")


_EXAMPLES = {
    "ckpt_path": "outputs/<date>/<run>/checkpoints/best.ckpt",
    "input": "IMAGE_OR_DIR",
    "output": "DIR",
}


def require_extra(extra: str, modules: tuple[str, ...], purpose: str) -> None:
    """ConfigError naming the extra to install when one of `modules` cannot be imported."""
    missing = []
    for module in modules:
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ConfigError(
            f"{purpose} needs {', '.join(missing)} (not installed): pip install 'segkit[{extra}]'"
        )


def positive_int(node: DictConfig, prefix: str, key: str) -> None:
    """ConfigError unless ``node[key]`` is an int >= 1 (named ``<prefix>.<key>``)."""
    value = node.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{prefix}.{key}={value!r} is invalid: expected a positive integer")
