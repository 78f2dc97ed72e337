"""Hydra resolvers for sweeps and W&B run names (registered on import by `segkit.run.compose`,
which every entry point imports).

* ``${segkit.sweep_group:}``: in a Hydra multirun, one name for every job of the sweep
  (``sweep-<date>_<time>`` from the sweep dir; Optuna sweeps included); None for a single run.
* ``${segkit.job_name:<name>}``: the name, with ``-<job number>`` in a multirun, so the runs of
  a sweep group stay apart in W&B.
* ``${segkit.method_name:${oc.select:model.method,null}}``: the method tag (`method_name`).

Hydra and the standard library only: registered before Hydra parses the command line.
"""

from __future__ import annotations

import os
import re

from omegaconf import OmegaConf

#: Set by `segkit.run.sweep_trials` for the trial processes of an Optuna sweep.
TRIAL_VARIABLE, SWEEP_DIR_VARIABLE = "SEGKIT_SWEEP_TRIAL", "SEGKIT_SWEEP_DIR"


def hydra_job():
    """(this job's Hydra config, its mode "RUN" or "MULTIRUN"), or (None, None) outside a
    Hydra job (or with no mode set, as in the compose API)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None, None
    hydra_cfg = HydraConfig.get()
    return hydra_cfg, hydra_cfg.mode.name if hydra_cfg.mode is not None else None


def sweep_group() -> str | None:
    """The W&B group of this job: its sweep's name in a multirun or an Optuna sweep's trial
    (`segkit.sweep`), else None."""
    if os.environ.get(SWEEP_DIR_VARIABLE):
        return sweep_name(os.environ[SWEEP_DIR_VARIABLE])
    hydra_cfg, mode = hydra_job()
    return sweep_name(str(hydra_cfg.sweep.dir)) if mode == "MULTIRUN" else None


def job_name(name: str) -> str:
    """`name`, or ``<name>-<job number>`` in a multirun (the trial number in a sweep)."""
    if os.environ.get(TRIAL_VARIABLE):
        return f"{name}-{os.environ[TRIAL_VARIABLE]}"
    hydra_cfg, mode = hydra_job()
    return f"{name}-{hydra_cfg.job.num}" if mode == "MULTIRUN" else name


def sweep_name(sweep_dir: str) -> str:
    """``multirun/2026-11-22/12-30-00`` -> ``sweep-2026-11-22_12-30-00`` (the last two parts
    of the sweep dir, which Hydra time-stamps; a user-named dir keeps its own name)."""
    parts = [p for p in re.split(r"[\\/]+", sweep_dir) if p not in ("", ".")]
    tail = parts[-2:] if len(parts) >= 2 and parts[-3:-2] == ["multirun"] else parts[-1:]
    return "sweep-" + "_".join(tail)


def method_name(method: object = None) -> str:
    """A run's method for its W&B tag: the ``model/method`` preset chosen, else the name in
    ``model.method`` (a string, or the module of a method object's ``_target_``), else
    "supervised"."""
    hydra_cfg, _ = hydra_job()
    choice = hydra_cfg.runtime.choices.get("model/method") if hydra_cfg is not None else None
    if choice:
        return str(choice)
    if isinstance(method, str):
        return method
    target = method.get("_target_") if hasattr(method, "get") else None
    return str(target).rsplit(".", 2)[-2] if target else "supervised"


for _name, _resolver in (
    ("segkit.sweep_group", sweep_group),
    ("segkit.job_name", job_name),
    ("segkit.method_name", method_name),
):
    if not OmegaConf.has_resolver(_name):
        OmegaConf.register_new_resolver(_name, _resolver)
