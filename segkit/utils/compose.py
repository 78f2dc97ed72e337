"""A segkit config composed in this process as its command line composes it (tests, the GPU
check, notebooks)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig


def compose_config(
    config_name: str, overrides: Sequence[str] = (), output_dir: str | Path | None = None
) -> DictConfig:
    """``conf/<config_name>.yaml`` (train, eval, predict, export) with `overrides`, ready for
    `segkit.train.train` or the other entry functions: Hydra's run-time values (the run dir,
    set to `output_dir` when given; the group choices; ``${hydra:...}``) are set, and the
    ``hydra`` node is removed, as `python -m segkit.<entry>` leaves it."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from segkit.train import CONF_DIR

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    if output_dir is not None:
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(output_dir)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg
