"""A segkit config composed in this process as its command line composes it (tests, the GPU
check, notebooks)."""

from __future__ import annotations

import weakref
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
    hydra_node = cfg.hydra
    with open_dict(cfg):
        del cfg["hydra"]
    _composed[id(cfg)] = (weakref.ref(cfg), hydra_node)
    return cfg


#: id of each config composed here -> (a weak reference to it, its Hydra node): what
#: `segkit.fit` records of how the config was made (Hydra records it for the command line).
_composed: dict[int, tuple[weakref.ref, DictConfig]] = {}


def hydra_node_of(cfg: DictConfig) -> DictConfig | None:
    """The Hydra node (overrides, group choices) `cfg` was composed with in this process,
    None for a config made otherwise."""
    found = _composed.get(id(cfg))
    return found[1] if found is not None and found[0]() is cfg else None


def write_hydra_record(cfg: DictConfig, run_dir: str | Path) -> None:
    """Write ``.hydra/hydra.yaml`` and ``.hydra/overrides.yaml`` of a composed config into
    `run_dir`, as Hydra does for the command line (`segkit.compare` reads the group choices
    there, ``resume=`` the overrides)."""
    from omegaconf import OmegaConf

    node = hydra_node_of(cfg)
    if node is None:
        return
    folder = Path(run_dir) / ".hydra"
    folder.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create({"hydra": node}), folder / "hydra.yaml")
    OmegaConf.save(OmegaConf.create(list(node.overrides.task)), folder / "overrides.yaml")


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
