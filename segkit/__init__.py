"""segkit: a PyTorch Lightning + Hydra research framework for image segmentation.

The Python API, for notebooks and scripts (the command line is ``segkit train|eval|...``)::

    import segkit

    cfg = segkit.compose(["model=unet", "trainer.max_epochs=2"])  # as `segkit train` composes
    metrics = segkit.fit(cfg, "runs/unet")                         # trains, returns metrics
    model = segkit.load("runs/unet/checkpoints/best.ckpt")
    classes = model.predict("photo.png")                          # HxW class indices

Importing segkit imports no torch: each function imports what it needs when called.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from segkit.run.loaded_model import LoadedModel

try:  # the one source of the version: the package metadata (pyproject.toml)
    __version__ = metadata.version("segkit")
except metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__", "compose", "fit", "load"]


def compose(overrides: Sequence[str] = (), run_dir: str | Path | None = None) -> DictConfig:
    """The training config ``segkit train <overrides>`` would run (``conf/train.yaml`` with
    the Hydra `overrides`); `run_dir` sets its run dir (default: Hydra's
    ``outputs/<date>/<time>_<model>_<data>``). Config errors raise as on the command line."""
    from segkit.run.compose import compose_config

    return compose_config("train", overrides, run_dir)


def fit(cfg: DictConfig, run_dir: str | Path, overwrite: bool | None = None) -> dict[str, float]:
    """Train `cfg` (from `compose`) in `run_dir`, as ``segkit train`` would: the config is
    checked first, then the best checkpoint is validated (and tested); returns those metrics.
    The run dir gets what every run writes (``.hydra/config.yaml``, ``.hydra/hydra.yaml`` and
    ``overrides.yaml``, checkpoints, ``metrics.json``, ``provenance.json``, pictures).

    A `run_dir` that already holds a run is refused, as on the command line
    (`segkit.run.run_dirs`): continue it with ``ckpt_path`` in the config, or empty it first
    with ``overwrite=True`` (None: the config's ``overwrite``). One process: for DDP over
    several processes use the command."""
    from segkit.run.compose import set_run_dir, write_hydra_record
    from segkit.run.config_checks import ConfigError, check_train_config
    from segkit.run.fit import train
    from segkit.run.quiet import quiet_third_parties
    from segkit.run.run_dirs import RunDirError, claim_run_dir

    quiet_third_parties(bool(cfg.get("verbose", False)))
    check_train_config(cfg)
    run_dir = Path(run_dir)
    overwrite = bool(cfg.get("overwrite", False)) if overwrite is None else overwrite
    try:
        claim_run_dir(run_dir, cfg.get("ckpt_path") is not None, overwrite, how="api")
    except RunDirError as err:
        raise ConfigError(str(err)) from err
    set_run_dir(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_hydra_record(cfg, run_dir)  # what `segkit compare` and `resume=` read
    return train(cfg, run_dir.resolve())


def load(
    ckpt_path: str | Path,
    device: str = "auto",
    precision: str = "auto",
    inference: dict[str, Any] | None = None,
) -> LoadedModel:
    """The model of a segkit checkpoint, rebuilt from the checkpoint alone (no config files,
    no downloads; pickled objects refused). `device`: auto | cpu | cuda | cuda:<n>;
    `precision`: auto (bf16 where the device runs it natively) | 32-true | bf16-mixed |
    16-mixed; `inference`: `segkit.inference.InferenceOptions` fields (windows, flip,
    scales). ``.predict(image)`` gives an HxW class-index array (instance models: COCO-style
    dicts)."""
    from segkit.run.loaded_model import load_model

    return load_model(ckpt_path, device, precision, inference)
