"""A segkit config composed in this process as its command line composes it (tests, the GPU
check, notebooks)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig

from segkit.tracking import resolvers  # noqa: F401  (configs' ${segkit.*:...} resolvers)

#: segkit's Hydra configs (``conf/`` at the repository root links here; shipped in the wheel).
CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")


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


def set_run_dir(run_dir: str | Path) -> None:
    """Point ``${hydra:runtime.output_dir}`` (``paths.output_dir``, the run dir) of the config
    composed last in this process at `run_dir`; ConfigError when none was composed."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict, read_write

    from segkit.run.config_checks import ConfigError

    if not HydraConfig.initialized():
        raise ConfigError("no composed config in this process: make it with segkit.compose()")
    runtime = HydraConfig.instance().cfg.hydra.runtime
    with read_write(runtime), open_dict(runtime):
        runtime.output_dir = str(Path(run_dir).resolve())
