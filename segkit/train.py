"""`python -m segkit.train` (or `segkit train`): train a segmenter from Hydra-composed configs.

Wires objects only: data module, task, callbacks, loggers and trainer come from `conf/` via
`_target_` (`segkit.run.fit.train` runs the job). Heavy imports happen after the config is
checked, so `--help`, `--cfg job` and config errors return in about a second.
"""

from __future__ import annotations

import os
import sys

import hydra
from hydra.errors import InstantiationException
from omegaconf import DictConfig

from segkit.run.checkpoints import CheckpointError
from segkit.run.compose import CONF_DIR
from segkit.run.config_checks import ConfigError, check_train_config
from segkit.run.group_choices import UnknownChoiceError, check_group_choices
from segkit.run.launch import CHILD_ARGS_VARIABLE, LaunchError, is_rank_zero, prepare_argv
from segkit.run.quiet import quiet_third_parties
from segkit.run.resume import ResumeError, check_run_dir, resume_argv
from segkit.tracking import resolvers  # noqa: F401  (sweep and W&B name resolvers)


def train(cfg: DictConfig) -> dict[str, float]:
    """Run the training job of a composed config (`segkit.run.fit.train`); its metrics."""
    from segkit.run.fit import train as run_job

    return run_job(cfg)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry; returns the monitored metric so sweepers can optimise it."""
    quiet_third_parties(bool(cfg.get("verbose", False)))
    try:
        check_train_config(cfg)
        metrics = train(cfg)
    except (ConfigError, InstantiationException) as err:
        print(f"segkit: config error: {one_line(err)}", file=sys.stderr)
        discard_unstarted_run()  # a run that never started leaves no folder to trip over
        sys.exit(2)
    return metrics.get(cfg.monitor)


def discard_unstarted_run() -> None:
    """Remove this job's run dir if it holds only what Hydra wrote as the job started."""
    from hydra.core.hydra_config import HydraConfig

    from segkit.run.run_dirs import discard_unstarted

    if HydraConfig.initialized() and is_rank_zero():
        discard_unstarted(HydraConfig.get().runtime.output_dir)


def one_line(err: Exception) -> str:
    """`<config key>: <original message>` for an object that refused its arguments."""
    if isinstance(err, InstantiationException) and err.__cause__ is not None:
        lines = str(err).splitlines()
        key = lines[-1].removeprefix("full_key: ") if lines[-1].startswith("full_key: ") else ""
        return f"{key}: {err.__cause__}" if key else str(err.__cause__)
    return str(err)


def is_sweep(argv: list[str]) -> bool:
    """Whether `argv` asks for a hyperparameter search (``hparams_search=...``) rather than
    one of its trials (`segkit.run.sweep_trials` marks those)."""
    from segkit.run.sweep_trials import TRIAL_VARIABLE

    searched = any(a.startswith("hparams_search=") and a != "hparams_search=null" for a in argv)
    return searched and TRIAL_VARIABLE not in os.environ


def run_command(argv: list[str]) -> None:
    """The command line `argv` (``argv[0]`` first): ``resume=``, DDP children and external
    launchers resolved (`segkit.run.launch`, `segkit.run.resume`), then Hydra."""
    if is_sweep(argv[1:]):  # Optuna drives the trials (segkit.run.sweep), each a run of this
        from segkit.run.sweep import main as sweep

        sys.exit(sweep(argv[1:]))
    try:
        check_group_choices(argv[1:], CONF_DIR)
        argv = resume_argv(argv)
        check_run_dir(argv, rank_zero=is_rank_zero() and CHILD_ARGS_VARIABLE not in os.environ)
        check_checkpoint_arg(argv)
        sys.argv = prepare_argv(argv)
    except UnknownChoiceError as err:
        print(f"segkit: config error: {err}", file=sys.stderr)
        sys.exit(2)
    except (LaunchError, ResumeError, CheckpointError) as err:
        print(f"segkit: {err}", file=sys.stderr)
        sys.exit(2)
    main()


def check_checkpoint_arg(argv: list[str]) -> None:
    """CheckpointError, before Hydra makes a run dir, when ``ckpt_path=`` (given, or added by
    ``resume=``) is no readable segkit checkpoint or would need pickled code to load."""
    given = [a.split("=", 1)[1] for a in argv[1:] if a.startswith("ckpt_path=")]
    if not given or given[-1] in ("null", "last") or "${" in given[-1]:
        return  # "last" is the run dir's own, checked with the config (segkit.run.fit)
    from segkit.run.checkpoints import load_checkpoint

    load_checkpoint(given[-1], mmap=True)  # tensors mapped, not read: a quick look


if __name__ == "__main__":
    run_command(sys.argv)
