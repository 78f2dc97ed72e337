"""The sweep driver behind `segkit.sweep`: an Optuna study over the search space of
``conf/hparams_search/<name>.yaml`` (Hydra's sweep grammar), each trial a `segkit.train`
process (`segkit.run.sweep_trials`), bad trials pruned on ``monitor``.

Optuna >= 4 is driven here directly: Hydra's Optuna sweeper plugin requires optuna < 3 in its
latest release (1.3.0); its repository has Optuna 4 support but no release carries it yet.

The study lives in ``<sweep dir>/optuna.db`` (SQLite): the same command with the same
``hydra.sweep.dir=DIR`` continues a killed sweep (the trial it interrupted runs again, with
its parameters; one sweep process per sweep dir), and
``optuna-dashboard sqlite:///DIR/optuna.db`` shows it. Each trial trains in
``<sweep dir>/<trial>_<model>_<data>/``; the best is written to
``<sweep dir>/optimization_results.yaml``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from segkit.run.compose import CONF_DIR
from segkit.run.group_choices import UnknownChoiceError, check_group_choices
from segkit.tracking.optuna_space import SearchSpaceError


def main(argv: list[str] | None = None) -> int:
    args = [a for a in (sys.argv[1:] if argv is None else argv) if a not in ("-m", "--multirun")]
    given = [a.split("=", 1)[1] for a in args if a.startswith("hydra.sweep.dir=")]
    sweep_dir = Path(given[-1] if given else time.strftime("multirun/%Y-%m-%d/%H-%M-%S"))
    overrides = [a for a in args if not a.startswith("hydra.sweep.dir=")]
    try:
        study, spec, space, cfg, name = _prepare(overrides, sweep_dir)
    except (UnknownChoiceError, SearchSpaceError, ValueError, ImportError) as err:
        print(f"segkit: config error: {err}", file=sys.stderr)
        return 2
    import optuna

    from segkit.run.sweep_trials import TrialFailed, run_trial
    from segkit.tracking.optuna_space import suggest

    if not cfg.get("verbose", False):  # one segkit line per trial instead of Optuna's log
        optuna.logging.set_verbosity(optuna.logging.WARNING)

    storage = storage_url(sweep_dir)

    def objective(trial: optuna.Trial) -> float:
        sampled = suggest(trial, space)
        return run_trial(trial, overrides, sampled, sweep_dir, storage, cfg.monitor, name)

    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    done = optuna.study.MaxTrialsCallback(int(spec.n_trials), states=states)
    if len(study.get_trials(states=states)) < int(spec.n_trials):
        study.optimize(objective, callbacks=[done, _report], catch=(TrialFailed,))
    _write_results(study, sweep_dir)
    return 0


def storage_url(sweep_dir: Path) -> str:
    """The study's SQLite URL (the form optuna-dashboard takes too)."""
    return f"sqlite:///{(sweep_dir / 'optuna.db').resolve()}"


def _prepare(overrides: list[str], sweep_dir: Path):
    """(the study, opened or continued; the ``sweep`` node; the parsed space; the config; the
    trials' run dir name, ``<model>_<data>``)."""
    from hydra.core.hydra_config import HydraConfig

    from segkit.run.compose import compose_config
    from segkit.tracking.optuna_space import parse_space

    check_group_choices(overrides, CONF_DIR)
    if not any(a.startswith("hparams_search=") for a in overrides):
        raise ValueError("segkit sweep needs a search space: hparams_search=optuna (or another)")
    cfg = compose_config("train", overrides)
    choices = HydraConfig.get().runtime.choices
    name = f"{choices.get('model')}_{choices.get('data')}"
    spec = cfg.get("sweep")
    if spec is None:
        raise ValueError("the hparams_search config has no sweep: node (see hparams_search/optuna)")
    space = parse_space(spec.params)
    try:
        import optuna
    except ImportError as err:
        raise ImportError("hparams_search needs optuna: pip install 'segkit[optuna]'") from err
    from hydra.utils import instantiate

    directions = {"max": "maximize", "min": "minimize"}
    if cfg.monitor_mode not in directions:
        raise ValueError(f"monitor_mode={cfg.monitor_mode!r}: expected max or min")
    sweep_dir.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(
        study_name=spec.study_name,
        storage=storage_url(sweep_dir),
        load_if_exists=True,
        direction=directions[cfg.monitor_mode],
        sampler=instantiate(spec.sampler),
        pruner=instantiate(spec.pruner),
    )
    restart_interrupted(study)
    return study, spec, space, cfg, name


def restart_interrupted(study) -> None:
    """Trials a killed sweep left running (one driver per sweep dir: none runs now) are
    marked failed, and their parameters queued to run again first."""
    from optuna.trial import TrialState

    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
        study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
        print(f"segkit: trial {trial.number} was interrupted: it runs again", file=sys.stderr)


def _report(study, trial) -> None:
    """One line per finished trial."""
    shown = f"value {trial.value:.4f}" if trial.value is not None else trial.state.name.lower()
    params = " ".join(f"{k}={v}" for k, v in trial.params.items())
    print(f"segkit: trial {trial.number} {shown} ({params})", flush=True)


def _write_results(study, sweep_dir: Path) -> None:
    from omegaconf import OmegaConf

    states = {t.state.name for t in study.trials}
    summary = {t: sum(1 for x in study.trials if x.state.name == t) for t in sorted(states)}
    best = study.best_trial if any(t.state.name == "COMPLETE" for t in study.trials) else None
    result = {
        "name": study.study_name,
        "best_value": best.value if best else None,
        "best_params": dict(best.params) if best else {},
        "best_run_dir": best.user_attrs.get("run_dir") if best else None,
        "trials": summary,
    }
    OmegaConf.save(OmegaConf.create(result), sweep_dir / "optimization_results.yaml")
    print(f"segkit: sweep {sweep_dir}: {summary}; best {result['best_value']} "
          f"{result['best_params']} ({result['best_run_dir']})\n"
          f"segkit: browse it with: optuna-dashboard {storage_url(sweep_dir)}")  # fmt: skip
