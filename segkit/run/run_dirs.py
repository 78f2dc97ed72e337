"""The one rule for reusing a run dir, shared by the command line (`segkit.run.resume`) and the
Python API (`segkit.fit`): a dir that holds a run is refused, unless the new run continues it
(``resume=``, ``ckpt_path=``) or ``overwrite=true`` asks for it to be emptied first.

A dir holds a run once training has left something to lose: a checkpoint, ``metrics.json`` or
a CSV log. A dir where training never started (the config failed: Hydra's ``.hydra/``, a
``train.log``, ``provenance.json``) does not count, so the corrected command can run there.

Standard library only: the command line checks before Hydra starts.
"""

from __future__ import annotations

import shutil
from pathlib import Path


class RunDirError(ValueError):
    """A run dir that a new run may not use."""


def holds_run(run_dir: Path) -> bool:
    """Whether training has run in `run_dir` (checkpoints, final metrics or a CSV log)."""
    run_dir = Path(run_dir)
    return (
        any((run_dir / "checkpoints").glob("*.ckpt"))
        or (run_dir / "metrics.json").is_file()
        or (run_dir / "csv" / "metrics.csv").is_file()
    )


def claim_run_dir(run_dir: Path, resuming: bool, overwrite: bool, how: str) -> None:
    """Let a new run use `run_dir`, or raise `RunDirError` (`how`: how to give the options in
    the message, "command" or "api"). With `overwrite`, a held run is deleted first."""
    run_dir = Path(run_dir)
    if resuming and overwrite:
        raise RunDirError("overwrite=true and continuing a run (resume=, ckpt_path=) contradict")
    if resuming or not holds_run(run_dir):
        return
    if overwrite:
        shutil.rmtree(run_dir)
        return
    if how == "api":
        options = (
            f"continue it with ckpt_path={run_dir}/checkpoints/last.ckpt in the config, "
            "empty it with segkit.fit(cfg, run_dir, overwrite=True), or give a new directory"
        )
    else:
        options = (
            f"continue it with resume={run_dir}, empty it with overwrite=true, or give a new "
            "directory"
        )
    raise RunDirError(f"{run_dir} already holds a run: {options}")


def discard_unstarted(run_dir: Path) -> bool:
    """Delete `run_dir` when it holds nothing but what Hydra writes as a job starts
    (``.hydra/``, its log file): a run that stopped on a config error leaves no folder
    behind. Returns whether it was deleted."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return False
    entries = list(run_dir.iterdir())
    if any(not (e.name == ".hydra" or (e.is_file() and e.suffix == ".log")) for e in entries):
        return False
    shutil.rmtree(run_dir, ignore_errors=True)
    return True
