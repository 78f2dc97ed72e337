"""A config group option that does not exist (``model=unett``), or a config key that moved
(``model.segmenter.encoder_name=...``, `segkit.run.moved_keys`), caught before Hydra runs: one
line with the closest names or the new key instead of Hydra's list of every option of every
group, or its "not in struct".

Standard library only: it runs before Hydra starts.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path

from segkit.run.moved_keys import moved


class UnknownChoiceError(ValueError):
    """A ``group=option`` override whose option is not in the group, or an override of a
    key that moved."""


def check_group_choices(args: Sequence[str], conf_dir: str | Path) -> None:
    """UnknownChoiceError for the first ``group=option`` of `args` (Hydra overrides, as on
    the command line) whose group is a folder of `conf_dir` and whose option is no YAML file
    in it, or whose key moved (`segkit.run.moved_keys`). Config keys (``data.root=...``),
    sweeps (``a,b``, ``choice(...)``), ``null`` and interpolations pass."""
    conf_dir = Path(conf_dir)
    if any(a.startswith(("hydra.searchpath", "+hydra.searchpath")) for a in args):
        return  # options may come from other config dirs: Hydra says what is missing
    for arg in args:
        if "=" not in arg or arg.startswith(("-", "hydra.", "hydra/")):
            continue
        key, value = arg.lstrip("+~").split("=", 1)
        new_key = moved(key)  # (models of one's own come with hydra.searchpath: not checked)
        if new_key:
            raise UnknownChoiceError(
                f"{arg}: {key} is now {new_key}: {arg.replace(key, new_key, 1)}"
            )
        group = key.split("@", 1)[0]
        if "." in group or not group or not (conf_dir / group).is_dir():
            continue
        if value in ("null", "") or any(c in value for c in ",()${}*"):
            continue
        options = sorted(p.stem for p in (conf_dir / group).glob("*.yaml"))
        if value in options:
            continue
        close = difflib.get_close_matches(value, options, n=2, cutoff=0.6)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        listed = ", ".join(options)
        raise UnknownChoiceError(
            f"{arg}: no option {value!r} in the {group} group; {hint}(options: {listed})"
        )


def exit_on_unknown_choice(args: Sequence[str], conf_dir: str | Path) -> None:
    """`check_group_choices` for an entry point: one line on stderr and exit status 2."""
    import sys

    try:
        check_group_choices(args, conf_dir)
    except UnknownChoiceError as err:
        print(f"segkit: config error: {err}", file=sys.stderr)
        sys.exit(2)
