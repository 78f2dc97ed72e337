"""A search space written in Hydra's sweep grammar (the ``params`` of ``conf/hparams_search/``)
turned into Optuna suggestions, so the same files serve Hydra multiruns and `segkit.sweep`.

    optimizer.lr: tag(log, interval(1e-4, 1e-2))   -> trial.suggest_float(..., log=True)
    loss: choice(ce, ce_dice, focal)               -> trial.suggest_categorical
    trainer.max_epochs: range(5, 20, step=5)        -> trial.suggest_int(..., step=5)
    data.batch_size: 8                              -> a fixed override

Standard library and Hydra's parser only: the space is checked before Optuna is imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class SearchSpaceError(ValueError):
    """A ``params`` entry that is no sweep Optuna can sample."""


def parse_space(params: Mapping[str, Any]) -> dict[str, Any]:
    """{key: parsed Hydra value (ChoiceSweep, IntervalSweep, RangeSweep or a fixed value)}."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    space = {}
    for key, value in params.items():
        try:
            space[key] = parser.parse_override(f"{key}={value}").value()
        except HydraException as err:
            raise SearchSpaceError(f"sweep.params.{key}={value!r}: {err}") from err
    return space


def suggest(trial: Any, space: Mapping[str, Any]) -> list[str]:
    """The trial's overrides ``key=value``: each sweep sampled by `trial`, fixed values as
    they are."""
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep

    overrides = []
    for key, value in space.items():
        if isinstance(value, ChoiceSweep):
            chosen = trial.suggest_categorical(key, [_plain(v) for v in value.list])
        elif isinstance(value, IntervalSweep):
            log = "log" in value.tags
            if isinstance(value.start, int) and isinstance(value.end, int):
                chosen = trial.suggest_int(key, value.start, value.end, log=log)
            else:
                chosen = trial.suggest_float(key, float(value.start), float(value.end), log=log)
        elif isinstance(value, RangeSweep):
            numbers = (value.start, value.stop, value.step)
            if all(isinstance(n, int) for n in numbers):
                chosen = trial.suggest_int(key, value.start, value.stop - 1, step=value.step)
            else:  # Hydra's float range excludes its stop, as Python's
                chosen = trial.suggest_float(key, value.start, value.stop, step=value.step)
        elif hasattr(value, "tags"):
            raise SearchSpaceError(f"sweep.params.{key}: {type(value).__name__} is not supported")
        else:
            chosen = value
        overrides.append(f"{key}={_plain(chosen)}")
    return overrides


def _plain(value: Any) -> Any:
    """Numbers and strings as they are; anything else (a list) as its string."""
    return value if isinstance(value, (int, float, str, bool)) or value is None else str(value)
