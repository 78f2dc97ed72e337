"""``python -m segkit.train resume=RUN_DIR [overrides]``: continue a run in its own run dir.

The command line is rebuilt before Hydra reads it: the run's own overrides (from
``RUN_DIR/.hydra/overrides.yaml``, so the config composes exactly as before), then the new
overrides given (they win; e.g. a longer ``trainer.max_epochs`` without a step-counted
scheduler), then ``hydra.run.dir=RUN_DIR ckpt_path=RUN_DIR/checkpoints/last.ckpt``. Lightning
restores weights, optimizers, schedulers, epoch and step; the CSV log and the W&B run continue
(`segkit.run.wandb_run.run_id_to_use`); the training order continues as if the run
had never stopped (`segkit.callbacks.resumable_epochs`).

Also here, for the same early moment: `check_run_dir` (a new run never reuses another run's
dir, and an unwritable one is refused before anything is written) and the ``segkit.fresh_dir``
resolver of ``conf/hydra/default.yaml`` (two runs started in the same second get two dirs).

Standard library, OmegaConf and Hydra's run mode only: it runs before Hydra.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

#: What a resumed run must find in its run dir.
LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"
#: Overrides of the original run that resuming replaces.
_REPLACED = ("hydra.run.dir", "ckpt_path", "resume")


class ResumeError(ValueError):
    """``resume=`` names something that is not a resumable run dir."""


def resume_argv(argv: list[str]) -> list[str]:
    """`argv` with ``resume=RUN_DIR`` expanded (unchanged without it)."""
    given = [a for a in argv[1:] if a.startswith("resume=")]
    if not given:
        return argv
    if len(given) > 1:
        raise ResumeError("resume= given twice")
    if any(a in ("-m", "--multirun") for a in argv[1:]):
        raise ResumeError("resume= continues one run: it cannot be combined with -m/--multirun")
    run_dir = Path(given[0].removeprefix("resume="))
    overrides_file = run_dir / ".hydra" / "overrides.yaml"
    if not overrides_file.is_file():
        raise ResumeError(
            f"resume={run_dir}: not a segkit run dir (no .hydra/overrides.yaml in it)"
        )
    checkpoint = run_dir / LAST_CHECKPOINT
    if not checkpoint.is_file():
        raise ResumeError(
            f"resume={run_dir}: no {LAST_CHECKPOINT} in it (the run saved no checkpoint yet)"
        )
    new = [a for a in argv[1:] if a != given[0]]
    new_keys = {_key(a) for a in new}
    original = [
        str(o)
        for o in OmegaConf.load(overrides_file)
        if _key(str(o)) not in new_keys and _key(str(o)) not in _REPLACED
    ]
    return [argv[0], *original, *new, f"hydra.run.dir={run_dir}", f"ckpt_path={checkpoint}"]


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def check_run_dir(argv: list[str], rank_zero: bool = True) -> None:
    """ResumeError before Hydra writes anything when a new run would reuse a dir that holds a
    run (`segkit.run.run_dirs.claim_run_dir`: refused unless it resumes, ``ckpt_path=`` given
    as ``resume=`` adds, or Lightning's SLURM ``hpc_ckpt_*.ckpt`` is in it, or
    ``overwrite=true`` empties it first), or cannot create its ``hydra.run.dir``. Only rank 0
    checks: other processes join its dir."""
    from segkit.run.run_dirs import RunDirError, claim_run_dir

    args = argv[1:]
    given = [a.split("=", 1)[1] for a in args if a.startswith("hydra.run.dir=")]
    if not rank_zero or not given or "${" in given[-1]:
        return
    run_dir = Path(given[-1])
    resuming = any(a.startswith("ckpt_path=") and a != "ckpt_path=null" for a in args)
    resuming = resuming or latest_hpc_checkpoint(run_dir) is not None
    overwrite = any(a.lower() in ("overwrite=true", "overwrite=1") for a in args)
    try:
        claim_run_dir(run_dir, resuming, overwrite, how="command")
    except RunDirError as err:
        raise ResumeError(f"hydra.run.dir={err}") from err
    check_writable(run_dir)


def latest_hpc_checkpoint(run_dir: Path) -> Path | None:
    """The ``hpc_ckpt_<n>.ckpt`` with the highest n in `run_dir`: the checkpoint Lightning
    resumes a requeued SLURM job from by itself (None if there is none)."""
    found = [
        (int(p.stem.removeprefix("hpc_ckpt_")), p)
        for p in Path(run_dir).glob("hpc_ckpt_*.ckpt")
        if p.stem.removeprefix("hpc_ckpt_").isdigit()
    ]
    return max(found)[1] if found else None


def check_writable(directory: Path) -> None:
    """ResumeError when `directory` cannot be created or written by this process."""
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    import os

    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ResumeError(
            f"cannot write the run dir {directory}: {existing} is not a writable directory"
        )


#: The run dir this process claimed (Lightning's DDP launcher resolves ``hydra.run.dir`` again).
_claimed: dict[str, str] = {}


def fresh_dir(path: str) -> str:
    """`path`, or ``<path>_2``, ``<path>_3``... when a run already uses it (two runs started
    in the same second). In a single run the dir is created here, so two processes never
    claim the same one, and later resolutions in the process return the same dir. In a
    multirun (jobs have their own sweep subdirs) `path` is returned untouched."""
    from segkit.tracking.resolvers import hydra_job

    if hydra_job()[1] != "RUN":
        return path
    if "run" in _claimed:
        return _claimed["run"]
    candidate, number = path, 1
    while True:
        try:
            Path(candidate).mkdir(parents=True, exist_ok=False)
            break
        except FileExistsError:
            number += 1
            candidate = f"{path}_{number}"
    _claimed["run"] = candidate
    return candidate


if not OmegaConf.has_resolver("segkit.fresh_dir"):
    OmegaConf.register_new_resolver("segkit.fresh_dir", fresh_dir, use_cache=True)
