"""`python -m segkit.train`: train a segmenter from Hydra-composed configs.

Wires objects only: data module, task, callbacks, loggers and trainer come from `conf/` via
`_target_`. Heavy imports happen after the config is checked, so `--help`, `--cfg job` and
config errors return in about a second.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import hydra
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf

from segkit.config_checks import (
    WANDB_LOGGER_TARGET,
    ConfigError,
    check_train_config,
    net_config_key,
    wandb_logger_config,
)
from segkit.launch import (
    CHILD_ARGS_VARIABLE,
    LaunchError,
    distributed_job,
    is_rank_zero,
    prepare_argv,
)
from segkit.resume import ResumeError, check_run_dir, resume_argv
from segkit.tracking import resolvers  # noqa: F401  (sweep and W&B name resolvers)

CONF_DIR = str(Path(__file__).resolve().parent / "conf")


def train(cfg: DictConfig) -> dict[str, float]:
    """Build data, task and trainer from `cfg`, then `fit_and_evaluate`; return the metrics."""
    # Libraries must never try the network for weights (retries take ~25 s before failing).
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from segkit.models.weights_cache import WeightsNotCachedError, require_cached_net_weights

    net_key = net_config_key(cfg.model)
    try:
        require_cached_net_weights(cfg.model[net_key])
    except (WeightsNotCachedError, ValueError) as err:
        weights = cfg.model[net_key].get("encoder_weights")
        raise ConfigError(f"model.{net_key}.encoder_weights={weights}: {err}") from err

    import lightning as L
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate

    from segkit.tracking.wandb_logger import finish_wandb, run_id_to_use
    from segkit.utils.class_weights import fill_auto_class_weights
    from segkit.utils.run_outputs import write_resolved_config

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    if cfg.get("ckpt_path") == "last":  # this run dir's last checkpoint (Lightning's "last")
        cfg.ckpt_path = str(last_checkpoint(run_dir))
    wandb_cfg = wandb_logger_config(cfg.get("logger") or {})
    if wandb_cfg is not None:  # before the config is saved: checkpoints keep the run id
        wandb_cfg.id = run_id_to_use(wandb_cfg.get("id"), cfg.get("ckpt_path"), run_dir)
    L.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data, _convert_="all")
    fill_auto_class_weights(cfg, datamodule)  # before the config is saved: it keeps the numbers
    if is_rank_zero():  # one writer per run dir
        write_resolved_config(cfg, run_dir)
    try:  # data.labeled_fraction < 1: every rank checks the split, rank 0 records it
        record = run_dir if is_rank_zero() else None
        getattr(datamodule, "write_labeled_split", lambda _: None)(record)
    except ValueError as err:
        raise ConfigError(f"data.labeled_fraction: {err}") from err

    task = build_task(cfg)
    trainer, loggers = build_trainer(cfg, task)

    # DDP processes Lightning starts run this job, in this run dir (segkit/launch.py).
    try:
        with distributed_job(HydraConfig.get().overrides.task, str(run_dir)):
            metrics = fit_and_evaluate(trainer, task, datamodule, cfg, run_dir)
    except BaseException:
        finish_wandb(loggers, exit_code=1)  # W&B marks the run failed
        raise
    finish_wandb(loggers)  # a multirun's next job starts its own W&B run
    return metrics


def build_task(cfg: DictConfig):
    """The LightningModule of `cfg.model` with its loss, optimizer and scheduler factories,
    and `model.pretrained` loaded (`prepare_net`)."""
    from hydra.utils import instantiate

    task = instantiate(
        task_config(cfg.model),
        _convert_="all",  # plain lists/dicts: checkpoints must load with weights_only=True
        loss=instantiate(cfg.loss, _convert_="all") if cfg.get("loss") else None,
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
    )
    prepare_net(task.net, cfg)
    return task


def build_trainer(cfg: DictConfig, task) -> tuple:
    """(Lightning Trainer, its loggers) for `cfg`: the configured callbacks plus the resolved
    config in every checkpoint, the loggers, and ``trainer.precision`` resolved
    (`segkit.utils.precision.trainer_precision`); sets the
    task's ``on_nonfinite`` from segkit's key ``trainer.on_nonfinite``."""
    from hydra.utils import instantiate

    from segkit.utils.precision import trainer_precision
    from segkit.utils.run_outputs import ConfigInCheckpoint

    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()]
    resolved = OmegaConf.to_container(cfg, resolve=True)
    callbacks.append(ConfigInCheckpoint(resolved))
    loggers = [
        # W&B shows the resolved config (passed as is: instantiate would build its _target_s).
        instantiate(c, _partial_=True)(run_config=resolved)
        if c.get("_target_") == WANDB_LOGGER_TARGET
        else instantiate(c)
        for c in (cfg.get("logger") or {}).values()
    ]
    trainer_cfg = OmegaConf.to_container(cfg.trainer, resolve=True)
    task.on_nonfinite = trainer_cfg.pop("on_nonfinite", "error")  # segkit's key, not Lightning's
    precision = trainer_precision(
        trainer_cfg.pop("precision", "auto"), trainer_cfg.get("accelerator", "auto")
    )
    trainer = instantiate(trainer_cfg, callbacks=callbacks, logger=loggers or False, **precision)
    return trainer, loggers


def last_checkpoint(run_dir: Path) -> Path:
    """``<run_dir>/checkpoints/last.ckpt``, or `ConfigError` saying how to name the run."""
    from segkit.resume import LAST_CHECKPOINT

    path = run_dir / LAST_CHECKPOINT
    if not path.is_file():
        raise ConfigError(
            f"ckpt_path=last: no {path}; name the run to continue with resume=RUN_DIR "
            "(or hydra.run.dir=RUN_DIR ckpt_path=last)"
        )
    return path


#: Write failures that stop a run with one line (full disk, quota, read-only, I/O, access).
WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EACCES)


def stop(trainer, message: str) -> None:
    """End training with exit status 1 and one line (printed once, by rank 0)."""
    if trainer.is_global_zero:
        print(f"segkit: training stopped: {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def fit_and_evaluate(trainer, task, datamodule, cfg: DictConfig, run_dir: Path) -> dict[str, float]:
    """Fit, then validate (and test) the best checkpoint; rank 0 writes metrics.json."""
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from segkit.data.bad_samples import BadSampleError
    from segkit.tasks.nonfinite import NonFiniteLossError
    from segkit.utils.run_outputs import print_summary, write_metrics
    from segkit.utils.stop_signals import SIGTERM_EXIT_STATUS

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
    for results in trainer.validate(task, datamodule=datamodule, ckpt_path=ckpt, verbose=False):
        metrics.update(results)
    if cfg.get("test") and getattr(datamodule, "has_labeled_test", True):
        for results in trainer.test(task, datamodule=datamodule, ckpt_path=ckpt, verbose=False):
            metrics.update(results)
    elif cfg.get("test") and trainer.is_global_zero:
        print("segkit: this dataset has no labelled test split: test skipped")
    if trainer.is_global_zero:
        write_metrics(metrics, run_dir / "metrics.json")
        print_summary(metrics, cfg.monitor, run_dir, best)
    return metrics


#: Model config keys read here rather than passed to the task: loading weights is a step of
#: building the network, and a checkpoint must not point at a file it no longer needs.
PRETRAINED_KEYS = ("pretrained", "pretrained_strict", "pretrained_target")
#: Model config keys other configs read (trainer=ddp: whether DDP must look for parameters a
#: backward pass leaves out, as the alternating steps of adversarial models do).
TRAINER_KEYS = ("ddp_find_unused_parameters",)


def task_config(model_cfg: DictConfig) -> DictConfig:
    """The model config, resolved, without `PRETRAINED_KEYS` and `TRAINER_KEYS`."""
    resolved = OmegaConf.to_container(model_cfg, resolve=True)
    skipped = PRETRAINED_KEYS + TRAINER_KEYS
    return OmegaConf.create({k: v for k, v in resolved.items() if k not in skipped})


def prepare_net(net, cfg: DictConfig) -> None:
    """Load `model.pretrained` into the built network and check it accepts the data's size."""
    from segkit.models.input_size import check_input_size
    from segkit.models.pretrained import load_pretrained

    path = cfg.model.get("pretrained")
    if path:
        try:
            report = load_pretrained(
                net,
                path,
                strict=bool(cfg.model.get("pretrained_strict", False)),
                target=str(cfg.model.get("pretrained_target", "auto")),
            )
        except (OSError, ValueError) as err:
            raise ConfigError(f"model.pretrained={path}: {err}") from err
        if is_rank_zero():
            print(report.summary())
    for key in ("image_size", "crop_size"):  # what the network will be given
        size = cfg.data.get(key)
        if size is not None:
            sizes = [size, size] if isinstance(size, int) else list(size)
            try:
                check_input_size(net, sizes, f"data.{key}")
            except ValueError as err:
                raise ConfigError(str(err)) from err


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry; returns the monitored metric so sweepers can optimise it."""
    try:
        check_train_config(cfg)
        metrics = train(cfg)
    except (ConfigError, InstantiationException) as err:
        print(f"segkit: config error: {_one_line(err)}", file=sys.stderr)
        sys.exit(2)
    return metrics.get(cfg.monitor)


def _one_line(err: Exception) -> str:
    """`<config key>: <original message>` for an object that refused its arguments."""
    if isinstance(err, InstantiationException) and err.__cause__ is not None:
        lines = str(err).splitlines()
        key = lines[-1].removeprefix("full_key: ") if lines[-1].startswith("full_key: ") else ""
        return f"{key}: {err.__cause__}" if key else str(err.__cause__)
    return str(err)


def check_sweeper_installed(argv: list[str]) -> None:
    """LaunchError when ``hparams_search=optuna`` is asked for without its Hydra plugin (Hydra
    itself would only say it cannot find ``hydra/sweeper=optuna``)."""
    from importlib.util import find_spec

    if "hparams_search=optuna" in argv and find_spec("hydra_plugins.hydra_optuna_sweeper") is None:
        raise LaunchError(
            "hparams_search=optuna needs the Optuna sweeper: pip install 'segkit[optuna]'"
        )


if __name__ == "__main__":
    try:
        check_sweeper_installed(sys.argv)
        argv = resume_argv(sys.argv)
        check_run_dir(argv, rank_zero=is_rank_zero() and CHILD_ARGS_VARIABLE not in os.environ)
        sys.argv = prepare_argv(argv)
    except (LaunchError, ResumeError) as err:
        print(f"segkit: {err}", file=sys.stderr)
        sys.exit(2)
    main()
