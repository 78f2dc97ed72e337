"""`logger=wandb`: Lightning's WandbLogger, online or offline as `decide_mode` says.

The run id is chosen by `segkit.run.wandb_run.run_id_to_use` before the logger is built: a new one,
or the id stored in the checkpoint a run resumes from, so a resumed run continues the same W&B
run. The resolved config (which holds the id) travels in every checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.loggers.logger import rank_zero_experiment

from segkit.tracking.wandb_mode import decide_mode


class SummaryWandbLogger(WandbLogger):
    """WandbLogger that, when its W&B run starts (rank 0), makes the run summary keep the best
    value of ``summary_metric`` ("max" or "min" ``summary_mode``) rather than the last one."""

    def __init__(self, *args, summary_metric: str | None = None, summary_mode: str = "max", **kw):
        super().__init__(*args, **kw)
        self.summary_metric, self.summary_mode = summary_metric, summary_mode
        # Lightning passes anonymous=None, which W&B now warns about on every run.
        getattr(self, "_wandb_init", {}).pop("anonymous", None)

    @property
    @rank_zero_experiment
    def experiment(self):
        starting = self._experiment is None
        run = WandbLogger.experiment.fget(self)
        if starting and self.summary_metric and hasattr(run, "define_metric"):
            run.define_metric(self.summary_metric, summary=self.summary_mode)
        return run


def wandb_logger(
    save_dir: str,
    project: str = "segkit",
    entity: str | None = None,
    name: str | None = None,
    group: str | None = None,
    tags: Sequence[str] = (),
    id: str | None = None,
    mode: str = "auto",
    log_model: bool | str = False,
    run_config: Mapping[str, Any] | None = None,
    job_type: str = "train",
    summary_metric: str | None = None,
    summary_mode: str = "max",
    console: bool = False,
):
    """A WandbLogger writing under ``<save_dir>/wandb``.

    Args:
        save_dir: the run dir.
        project, entity, name, group, tags, job_type: as in ``wandb.init``.
        id: the W&B run id (`segkit.train` fills it; a resumed checkpoint keeps its own).
        mode: "auto" (online with credentials, else offline; see `decide_mode`), "online",
            "offline" or "disabled".
        log_model: upload checkpoints as artifacts: false, true (at the end) or "all" (each
            time one is saved). Offline, they are uploaded by ``wandb sync``.
        run_config: the run config shown in W&B (`segkit.train` passes the resolved config).
        summary_metric, summary_mode: the run summary keeps this metric's best value ("max"
            or "min"), not its last one (``${monitor}``: W&B tables sort runs by best mIoU).
        console: offline, W&B's own console output (its mode notices, the run summary at
            the end); false: silent, segkit prints where the run is and how to sync it.
    """
    decided, reason = decide_mode(mode)
    (Path(save_dir) / "wandb").mkdir(parents=True, exist_ok=True)  # wandb.init needs it
    logger = SummaryWandbLogger(
        summary_metric=summary_metric,
        summary_mode=summary_mode,
        save_dir=save_dir,
        project=project,
        entity=entity,
        name=name,
        group=group,
        tags=[str(t) for t in tags if t is not None],
        id=id,
        # wandb's own `mode`, not Lightning's `offline` flag: that one sets WANDB_MODE for the
        # whole process (every later job of a multirun) and refuses log_model offline.
        mode=decided,
        log_model=log_model,
        config=dict(run_config) if run_config is not None else None,
        job_type=job_type,
        **_quiet_settings(decided, console),
    )
    logger.segkit_mode = (decided, reason)
    return logger


def finish_wandb(loggers: Sequence[Any], exit_code: int = 0) -> None:
    """End this process's W&B run (a multirun's next job starts its own) and tell an offline
    run how to upload it. A non-zero `exit_code` marks the run failed in W&B."""
    for logger in loggers:
        if not isinstance(logger, WandbLogger) or logger._experiment is None:
            continue
        mode, reason = getattr(logger, "segkit_mode", ("online", ""))
        run_dir = Path(logger.experiment.dir).parent  # <save_dir>/wandb/offline-run-...
        logger.experiment.finish(exit_code=exit_code)
        if mode == "offline":
            print(
                f"segkit: W&B run saved offline ({reason}); upload it with:\n  wandb sync {run_dir}"
            )


def _quiet_settings(mode: str, console: bool) -> dict[str, Any]:
    """``settings`` for wandb.init: silent offline unless `console` (online keeps its link)."""
    if console or mode != "offline":
        return {}
    import wandb

    return {"settings": wandb.Settings(silent=True)}
