"""A job's plan: what it decides about itself, worked out once from its config before anything
is built. `segkit.run.fit.train` plans a training job (`plan_job`), eval, predict and
`segkit.load` plan the rebuild of a checkpoint's task (`plan_job` with their own precision);
`build_task` and `build_trainer` read the plan, and nothing resolves one of its facts again.

What only the data can tell (``class_weights: auto``, a COCO file's category ids) is filled in
after the datamodule is built and before the config is saved (`segkit.run.fit`): those need
the training masks or annotations, which the datamodule reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from segkit.run.config_checks import ConfigError, wandb_logger_config
from segkit.run.facts import task_family


@dataclass(frozen=True)
class JobPlan:
    """The facts of one job.

    Attributes:
        family: the task family (`segkit.run.facts.task_family`).
        accelerator: ``trainer.accelerator`` as configured ("auto", "cpu", "gpu", ...).
        precision: the Lightning precision the job runs with, "auto" resolved for the device.
        channels_last: whether a semantic network runs channels-last (``model.channels_last``
            resolved for that precision; False for instance models, which take no option).
        on_nonfinite: "error" or "skip" (``trainer.on_nonfinite``).
        ckpt_path: the checkpoint training resumes from ("last" resolved to this run dir's
            file, its family checked), or None.
        wandb_id: the W&B run id (a resumed run's own) when a W&B logger is configured.
    """

    family: str
    accelerator: str
    precision: str | int
    channels_last: bool
    on_nonfinite: str = "error"
    ckpt_path: str | None = None
    wandb_id: str | None = None


def plan_job(
    cfg: DictConfig, run_dir: Path | None = None, precision: str | int | None = None
) -> JobPlan:
    """The plan of a job on run config `cfg`.

    Args:
        cfg: a composed training config, or a checkpoint's stored one.
        run_dir: a training job's run dir: ``ckpt_path`` and the W&B id are planned only with
            one (``ckpt_path=last`` names its last checkpoint).
        precision: the job's own precision option (eval/predict/load), resolved; None: the
            config's ``trainer.precision`` resolved for ``trainer.accelerator``.
    """
    from segkit.run.precision import channels_last, resolve_precision

    trainer = cfg.get("trainer") or {}
    accelerator = str(trainer.get("accelerator", "auto"))
    if precision is None:
        precision = resolve_precision(trainer.get("precision", "auto"), accelerator)
    family = task_family(cfg)
    nhwc = family != "instance" and channels_last(cfg.model.get("channels_last", "auto"), precision)
    ckpt_path = wandb_id = None
    if run_dir is not None:
        ckpt_path = resumed_checkpoint(cfg, run_dir)
        wandb_id = planned_wandb_id(cfg, ckpt_path, run_dir)
    return JobPlan(
        family=family,
        accelerator=accelerator,
        precision=precision,
        channels_last=nhwc,
        on_nonfinite=str(trainer.get("on_nonfinite", "error")),
        ckpt_path=ckpt_path,
        wandb_id=wandb_id,
    )


def resumed_checkpoint(cfg: DictConfig, run_dir: Path) -> str | None:
    """``cfg.ckpt_path`` ("last": ``<run_dir>/checkpoints/last.ckpt``), checked to be a
    readable, safe checkpoint of the config's family before anything is written."""
    from segkit.run.checkpoints import CheckpointError, check_family
    from segkit.run.resume import LAST_CHECKPOINT

    path = cfg.get("ckpt_path")
    if not path:
        return None
    if path == "last":  # this run dir's last checkpoint (Lightning's "last")
        last = Path(run_dir) / LAST_CHECKPOINT
        if not last.is_file():
            raise ConfigError(
                f"ckpt_path=last: no {last}; name the run to continue with resume=RUN_DIR "
                "(or hydra.run.dir=RUN_DIR ckpt_path=last)"
            )
        path = str(last)
    try:
        check_family(path, cfg)
    except CheckpointError as err:
        raise ConfigError(f"ckpt_path: {err}") from err
    return str(path)


def planned_wandb_id(cfg: DictConfig, ckpt_path: str | None, run_dir: Path) -> str | None:
    """The W&B run id of a run with a W&B logger (`segkit.run.wandb_run.run_id_to_use`:
    configured, else the resumed checkpoint's, else new); None without one."""
    from segkit.run.wandb_run import run_id_to_use

    wandb_cfg = wandb_logger_config(cfg.get("logger") or {})
    if wandb_cfg is None:
        return None
    return run_id_to_use(wandb_cfg.get("id"), ckpt_path, run_dir)


def record_plan(cfg: DictConfig, plan: JobPlan) -> None:
    """Write what the saved config (and every checkpoint) must hold of `plan` into `cfg`: the
    resolved ``ckpt_path`` and the W&B run id."""
    if plan.ckpt_path is not None:
        cfg.ckpt_path = plan.ckpt_path
    if plan.wandb_id is not None:
        wandb_logger_config(cfg.logger).id = plan.wandb_id
