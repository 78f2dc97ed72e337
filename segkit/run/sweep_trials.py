"""One Optuna trial of `segkit.sweep`: the sampled overrides trained as a `segkit.train`
process in the trial's own run dir, with `segkit.callbacks.optuna_pruning.OptunaPruning`
reporting the monitored metric to the study's storage.

A process per trial: its memory is freed when it ends, DDP trials launch their ranks as any
run does (trainer=ddp), and a killed sweep leaves complete run dirs behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

# A trial process has these set (`segkit.tracking.resolvers`): its `segkit.train` runs the
# trial instead of a sweep, and its W&B run joins the sweep's group.
from segkit.tracking.resolvers import SWEEP_DIR_VARIABLE, TRIAL_VARIABLE


class TrialFailed(RuntimeError):
    """A trial process that ended with an error (the study records it as failed)."""


def run_trial(
    trial: Any,
    overrides: list[str],
    sampled: list[str],
    sweep_dir: Path,
    storage: str,
    monitor: str,
    name: str,
) -> float:
    """Train one trial; the monitored value of its best checkpoint. Raises
    ``optuna.TrialPruned`` when the pruner stopped it, `TrialFailed` when it failed."""
    import optuna

    from segkit.callbacks.optuna_pruning import PRUNED_FILE

    run_dir = sweep_dir / f"{trial.number}_{name}"
    pruning = {
        "_target_": "segkit.callbacks.optuna_pruning.OptunaPruning",
        "storage": storage,
        "study_name": trial.study.study_name,
        "trial_id": trial._trial_id,  # what optuna.trial.Trial(study, id) takes (no public name)
        "monitor": monitor,
        "pruner": "${sweep.pruner}",  # the hparams_search preset's, built in the trial
    }
    command = [
        sys.executable, "-m", "segkit.train", *overrides, *sampled,
        f"+callbacks.optuna_pruning={_hydra_value(pruning)}", f"hydra.run.dir={run_dir}",
    ]  # fmt: skip
    marks = {TRIAL_VARIABLE: str(trial.number), SWEEP_DIR_VARIABLE: str(sweep_dir)}
    env = dict(os.environ, **marks)
    log = run_dir.parent / f"{run_dir.name}.log"
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env).returncode
    trial.set_user_attr("run_dir", str(run_dir))
    trial.set_user_attr("overrides", sampled)
    if (run_dir / PRUNED_FILE).is_file():
        raise optuna.TrialPruned(json.loads((run_dir / PRUNED_FILE).read_text()))
    if code != 0:
        raise TrialFailed(f"trial {trial.number} failed (exit {code}); its output: {log}")
    value = json.loads((run_dir / "metrics.json").read_text()).get(monitor)
    if value is None:
        raise TrialFailed(f"trial {trial.number}: no {monitor} in {run_dir / 'metrics.json'}")
    return float(value)


def _hydra_value(node: dict[str, Any]) -> str:
    """A flat dict as a Hydra override value: ``{key:'value',...}``."""
    items = []
    for key, value in node.items():
        plain = isinstance(value, int) or str(value).startswith("${")
        shown = value if plain else "'" + str(value).replace("'", "\\'") + "'"
        items.append(f"{key}:{shown}")
    return "{" + ",".join(items) + "}"
