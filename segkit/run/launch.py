"""How the processes of one distributed run agree on one run directory, written by rank 0 only.

segkit never starts processes itself. They come from one of four places:

* **Lightning** (``trainer=ddp|ddp_cpu`` from one command): rank 0 starts the others by
  re-running the command line. In a Hydra multirun that command line would re-run the whole
  sweep (Lightning issue #11300), so rank 0 hands its children the overrides and run dir of
  the one job they belong to (`distributed_job`, read back by `prepare_argv`).
* **torchrun** and **srun** (SLURM without submitit): every process runs the command on its
  own and would time-stamp its own run dir; `prepare_argv` names the dir after the launcher's
  run id (``TORCHELASTIC_RUN_ID``, ``SLURM_JOB_ID``) unless ``hydra.run.dir`` is given.
* **hydra-submitit-launcher** (``hydra/launcher=slurm``): every SLURM task unpickles the job
  with Hydra's resolved sweep dir, so all already agree.

In all cases only rank 0 writes Hydra's ``.hydra/`` and ``train.log``: ``conf/hydra`` asks
the ``segkit.on_rank_zero`` resolver registered here. Standard library only (imported before
Hydra parses the command line; torch only inside `distributed_job`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from omegaconf import OmegaConf

#: Environment variables in which launchers give a process its (global, local, node) rank.
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID")
#: Set by rank 0 while Lightning starts its DDP children: JSON list of the job's arguments.
CHILD_ARGS_VARIABLE = "SEGKIT_DDP_JOB_ARGS"
#: Arguments Lightning appends to its children's command line that are kept.
_LIGHTNING_CHILD_KEYS = ("hydra.job.name=", "hydra.output_subdir=")


class LaunchError(RuntimeError):
    """The processes of a distributed launch could not agree on a run directory."""


def process_rank(environ: Mapping[str, str] = os.environ) -> int:
    """This process's rank as its launcher set it (0 when launched as a single process).

    Any non-zero rank variable counts: a child Lightning started has ``LOCAL_RANK``, a
    torchrun worker ``RANK``, an srun task ``SLURM_PROCID``, a second node ``NODE_RANK``."""
    for name in RANK_VARIABLES:
        value = environ.get(name, "0").strip() or "0"
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 0


def is_rank_zero(environ: Mapping[str, str] = os.environ) -> bool:
    return process_rank(environ) == 0


def _on_rank_zero(value_on_rank_zero: Any, value_elsewhere: Any) -> Any:
    return value_on_rank_zero if is_rank_zero() else value_elsewhere


# Used by conf/hydra/default.yaml (output_subdir and the log file handler).
if not OmegaConf.has_resolver("segkit.on_rank_zero"):
    OmegaConf.register_new_resolver("segkit.on_rank_zero", _on_rank_zero)


#: What Lightning's launcher sets in rank 0's own environment when it starts DDP children.
_LIGHTNING_VARIABLES = (
    "MASTER_ADDR",
    "MASTER_PORT",
    "NODE_RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "OMP_NUM_THREADS",
)


@contextmanager
def distributed_job(task_overrides: Sequence[str], run_dir: str) -> Iterator[None]:
    """Run one job's ``fit``/``validate``/``test`` inside: DDP processes Lightning starts there
    belong to this job and this run dir, and after it the process is ready for the next job.

    The children inherit the environment, where `prepare_argv` finds the job's overrides and
    run dir. On exit, Lightning's variables and the thread count are restored and the process
    group closed: left as they are, the next job of a multirun would believe its processes
    already started and wait for them forever."""
    import torch

    saved = {name: os.environ.get(name) for name in (*_LIGHTNING_VARIABLES, CHILD_ARGS_VARIABLE)}
    threads = torch.get_num_threads()
    os.environ[CHILD_ARGS_VARIABLE] = json.dumps(
        [*task_overrides, f"hydra.run.dir={_quoted(run_dir)}"]
    )
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        torch.set_num_threads(threads)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def prepare_argv(argv: Sequence[str], environ: Mapping[str, str] = os.environ) -> list[str]:
    """The command line this process should give Hydra (``argv[0]`` first).

    * A DDP child Lightning started: the job's overrides and run dir from rank 0 (never
      ``-m``), plus the job name and ``hydra.output_subdir=null`` Lightning adds.
    * A process torchrun or srun started, one of several, without ``hydra.run.dir``: the
      run dir ``outputs/<launcher>-<run id>_<model>_<data>``, the same in every process.
      Without a run id (torchrun's static rendezvous without ``--rdzv-id``, or nodes started
      by hand with ``NODE_RANK``) LaunchError: ``hydra.run.dir`` must be given.
    * Anything else: unchanged.
    """
    args = list(argv[1:])
    if CHILD_ARGS_VARIABLE in environ and environ.get("LOCAL_RANK", "0") not in ("", "0"):
        kept = [a for a in args if a.startswith(_LIGHTNING_CHILD_KEYS)]
        return [argv[0], *json.loads(environ[CHILD_ARGS_VARIABLE]), *kept]
    launcher, run_id, processes = _external_launch(environ)
    if processes < 2 or any(a.startswith("hydra.run.dir=") for a in args):
        return [argv[0], *args]
    if any(a in ("-m", "--multirun") for a in args):
        raise LaunchError(
            f"{launcher} started {processes} processes of a multirun: run sweeps with "
            "hydra/launcher=slurm or one DDP job per sweep job (trainer=ddp), not under "
            f"{launcher}"
        )
    if not run_id:
        raise LaunchError(
            f"{launcher} started {processes} processes without a shared run id, so they "
            "cannot agree on a run directory: pass hydra.run.dir=<a directory every node "
            "can write> or torchrun --rdzv-id=<id>"
        )
    run_dir = f"outputs/{launcher}-{run_id}_${{hydra:runtime.choices.model}}"
    return [argv[0], *args, f"hydra.run.dir={run_dir}_${{hydra:runtime.choices.data}}"]


def _external_launch(environ: Mapping[str, str]) -> tuple[str, str, int]:
    """(launcher name, run id shared by all its processes, number of processes)."""
    if "TORCHELASTIC_RUN_ID" in environ:
        run_id = environ["TORCHELASTIC_RUN_ID"]
        return "torchrun", "" if run_id == "none" else run_id, int(environ.get("WORLD_SIZE", 1))
    if "SLURM_JOB_ID" in environ:
        job = environ.get("SLURM_ARRAY_JOB_ID", environ["SLURM_JOB_ID"])
        task = environ.get("SLURM_ARRAY_TASK_ID")
        run_id = f"{job}_{task}" if task else job
        return "slurm", run_id, int(environ.get("SLURM_NTASKS", 1))
    if "NODE_RANK" in environ:  # Lightning's multi-node launch by hand, one command per node
        return "a multi-node launch (NODE_RANK)", "", int(environ.get("WORLD_SIZE", 2))
    return "", "", 1


def _quoted(value: str) -> str:
    """A Hydra override value that stays one string whatever characters the path has."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
