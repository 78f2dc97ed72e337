"""One training job: data, task and trainer built from a composed config, fit, then the best
checkpoint validated (and tested). `segkit.train` (the command), `segkit.fit` (the Python
API), sweeps and the tests all run it."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

from omegaconf import DictConfig

from segkit.run.config_checks import ConfigError
from segkit.run.launch import distributed_job, is_rank_zero
from segkit.run.plan import plan_job, record_plan


def train(cfg: DictConfig, run_dir: Path | None = None) -> dict[str, float]:
    """Build data, task and trainer from `cfg`, then `fit_and_evaluate`; return the metrics.

    `run_dir` defaults to Hydra's run dir (``hydra.run.dir``, or the one `segkit.compose`
    set)."""
    # Libraries must never try the network for weights (retries take ~25 s before failing).
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from segkit.models.weights_cache import WeightsNotCachedError, require_cached_net_weights

    try:
        require_cached_net_weights(cfg.model.net)
    except (WeightsNotCachedError, ValueError) as err:
        weights = cfg.model.net.get("encoder_weights")
        raise ConfigError(f"model.net.encoder_weights={weights}: {err}") from err

    import lightning as L
    from hydra.core.hydra_config import HydraConfig

    from segkit.run.build import build_task, build_trainer
    from segkit.run.category_ids import record_category_ids
    from segkit.run.class_weights import fill_auto_class_weights
    from segkit.run.outputs import write_resolved_config
    from segkit.run.provenance import provenance, write_provenance
    from segkit.tracking.wandb_logger import finish_wandb

    hydra = HydraConfig.get()
    run_dir = Path(run_dir or hydra.runtime.output_dir)
    # Precision, memory format, the checkpoint to resume, the W&B id: decided once, here.
    plan = plan_job(cfg, run_dir)
    record_plan(cfg, plan)  # before the config is saved: checkpoints keep them
    check_pretrained_file(cfg.model.get("pretrained"))
    L.seed_everything(cfg.seed, workers=True)
    from hydra.utils import instantiate

    datamodule = instantiate(cfg.data, _convert_="all")
    survey_training_masks(datamodule)
    # Before the config is saved: it (and every checkpoint) keeps the numbers.
    fill_auto_class_weights(cfg, datamodule)
    try:
        record_category_ids(cfg, datamodule)
    except (ValueError, OSError) as err:
        raise ConfigError(f"the training annotations: {err}") from err
    record = provenance(plan.precision, plan.accelerator)
    if is_rank_zero():  # one writer per run dir
        write_resolved_config(cfg, run_dir)
        write_provenance(record, run_dir)
    try:  # semi-supervised data: every rank checks the split, rank 0 records it
        split_dir = run_dir if is_rank_zero() else None
        getattr(datamodule, "write_labeled_split", lambda _: None)(split_dir)
    except (ValueError, OSError) as err:
        raise ConfigError(f"the labeled/unlabeled split: {err}") from err

    task = build_task(cfg, plan)
    trainer, loggers = build_trainer(cfg, plan, record)

    # DDP processes Lightning starts run this job, in this run dir (segkit/run/launch.py).
    try:
        with distributed_job(hydra.overrides.task, str(run_dir)):
            metrics = fit_and_evaluate(trainer, task, datamodule, cfg, run_dir)
    except BaseException:
        finish_wandb(loggers, exit_code=1)  # W&B marks the run failed
        raise
    finish_wandb(loggers)  # a multirun's next job starts its own W&B run
    return metrics


def check_pretrained_file(path) -> None:
    """ConfigError, before anything is written, when ``model.pretrained`` is no readable
    weights file (missing, not a PyTorch file, damaged, or holding pickled code); the
    network loads it later (`segkit.run.build.prepare_net`)."""
    if not path:
        return
    from segkit.models.pretrained import read_state_dict

    try:
        read_state_dict(path)
    except (OSError, ValueError) as err:
        raise ConfigError(f"model.pretrained={path}: {err}") from err


def survey_training_masks(datamodule) -> None:
    """Folder data: its training masks read once before anything is written, so masks the
    config misreads stop the run at once (`segkit.data.mask_survey`) and classes without a
    training pixel are warned about."""
    survey = getattr(datamodule, "survey_training_masks", None)
    if survey is None:
        return
    try:
        empty = survey()
    except (ValueError, OSError) as err:
        raise ConfigError(str(err)) from err
    if empty and is_rank_zero():
        print(
            f"segkit: warning: no training pixel belongs to {len(empty)} of the classes: "
            f"{', '.join(empty)} (check the masks, data.num_classes and data.class_names)",
            file=sys.stderr,
        )


#: Write failures that stop a run with one line (full disk, quota, read-only, I/O, access).
WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EACCES)


def stop(trainer, message: str) -> None:
    """End training with exit status 1 and one line (printed once, by rank 0)."""
    if trainer.is_global_zero:
        print(f"segkit: training stopped: {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def fit_and_evaluate(trainer, task, datamodule, cfg: DictConfig, run_dir: Path) -> dict[str, float]:
    """Fit, then validate (and test) the best checkpoint; rank 0 writes metrics.json."""
    from lightning.pytorch.loggers import CSVLogger
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from segkit.callbacks.stop_signals import SIGTERM_EXIT_STATUS
    from segkit.data.bad_samples import BadSampleError
    from segkit.run.outputs import print_summary, write_metrics
    from segkit.tasks.nonfinite import NonFiniteLossError

    try:
        trainer.fit(task, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    except BadSampleError as err:  # its last line: without a loader worker's traceback
        stop(
            trainer, str(err).strip().splitlines()[-1].removeprefix(f"{BadSampleError.__module__}.")
        )
    except OSError as err:
        if err.errno not in WRITE_ERRNOS:
            raise
        where = f" ({err.filename})" if err.filename else ""
        stop(
            trainer,
            f"{err.strerror}{where}; the checkpoints saved before are intact in "
            f"{run_dir}/checkpoints (writes are atomic)",
        )
    except NonFiniteLossError as err:
        stop(
            trainer,
            f"{err}. Earlier checkpoints are kept in {run_dir}/checkpoints; lower "
            "the learning rate, check the data, or set trainer.on_nonfinite=skip",
        )
    except SIGTERMException:
        if trainer.is_global_zero:
            print(
                f"segkit: stopped by SIGTERM at step {trainer.global_step}; saved "
                f"{run_dir}/checkpoints/last.ckpt; continue with:\n"
                f"  python -m segkit.train resume={run_dir}",
                file=sys.stderr,
                flush=True,
            )
        raise SystemExit(SIGTERM_EXIT_STATUS) from None
    if trainer.interrupted:
        raise SystemExit(
            f"segkit: training was interrupted; checkpoints so far: {run_dir}/checkpoints"
        )

    skipped = getattr(task, "nonfinite_skips", 0)
    if skipped and trainer.is_global_zero:
        print(f"segkit: skipped {skipped} training batches with a non-finite loss")
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    ckpt = best or None  # no checkpoint: evaluate the weights in memory
    metrics: dict[str, float] = {}
    # The best checkpoint's validation was logged when it was saved: re-scoring it must not add
    # a second row to csv/metrics.csv. Other loggers keep it (W&B's panels of the best checkpoint
    # are drawn from this validation; its summary keeps the best value anyway).
    loggers = trainer.loggers
    trainer.loggers = [lg for lg in loggers if not isinstance(lg, CSVLogger)]
    try:
        for results in trainer.validate(task, datamodule=datamodule, ckpt_path=ckpt, verbose=False):
            metrics.update(results)
    finally:
        trainer.loggers = loggers
    if cfg.get("test") and getattr(datamodule, "has_labeled_test", True):
        for results in trainer.test(task, datamodule=datamodule, ckpt_path=ckpt, verbose=False):
            metrics.update(results)
    elif cfg.get("test") and trainer.is_global_zero:
        print("segkit: this dataset has no labelled test split: test skipped")
    if trainer.is_global_zero:
        write_metrics(metrics, run_dir / "metrics.json")
        print_summary(metrics, cfg.monitor, run_dir, best)
    return metrics
