"""segkit.run.launch: ranks from launcher variables, the command line each process gives Hydra,
and the process state a DDP job leaves for the next job of a multirun."""

from __future__ import annotations

import json
import os

import pytest
import torch
from omegaconf import OmegaConf

from segkit.run.launch import (
    CHILD_ARGS_VARIABLE,
    LaunchError,
    distributed_job,
    prepare_argv,
    process_rank,
)

ARGV = ["segkit/train.py", "model=unet", "trainer=ddp_cpu"]


@pytest.mark.parametrize(
    ("environ", "rank"),
    [
        ({}, 0),
        ({"LOCAL_RANK": "0", "NODE_RANK": "0"}, 0),
        ({"LOCAL_RANK": "1"}, 1),  # a child Lightning started
        ({"RANK": "3", "LOCAL_RANK": "1"}, 3),  # torchrun
        ({"SLURM_PROCID": "2"}, 2),  # srun
        ({"NODE_RANK": "1", "LOCAL_RANK": "0"}, 1),  # second node started by hand
    ],
)
def test_process_rank_reads_any_launcher(environ, rank):
    assert process_rank(environ) == rank


def test_rank_zero_resolver_chooses_by_rank(monkeypatch):
    for name in ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID"):
        monkeypatch.delenv(name, raising=False)
    cfg = OmegaConf.create({"subdir": "${segkit.on_rank_zero:.hydra,null}"})
    assert cfg.subdir == ".hydra"
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert OmegaConf.create({"subdir": "${segkit.on_rank_zero:.hydra,null}"}).subdir is None


def test_single_process_command_line_is_unchanged():
    assert prepare_argv(ARGV, {}) == ARGV
    assert prepare_argv([*ARGV, "-m", "seed=0,1"], {}) == [*ARGV, "-m", "seed=0,1"]


def test_lightning_child_runs_its_job_not_the_sweep():
    # What Lightning runs for rank 1 of a multirun job: rank 0's whole command line again.
    job = ["model=unet", "seed=1", "hydra.run.dir='/runs/sweep/1_unet'"]
    child = [*ARGV, "-m", "seed=0,1", 'hydra.run.dir="outputs/x"']
    child += ["hydra.job.name=train_ddp_process_1", "hydra.output_subdir=null"]
    environ = {"LOCAL_RANK": "1", CHILD_ARGS_VARIABLE: json.dumps(job)}
    assert prepare_argv(child, environ) == [
        ARGV[0],
        *job,
        "hydra.job.name=train_ddp_process_1",
        "hydra.output_subdir=null",
    ]


@pytest.mark.parametrize(
    ("environ", "run_dir"),
    [
        (
            {"TORCHELASTIC_RUN_ID": "job7", "WORLD_SIZE": "4", "RANK": "2"},
            "outputs/torchrun-job7_${hydra:runtime.choices.model}_${hydra:runtime.choices.data}",
        ),
        (
            {"SLURM_JOB_ID": "123", "SLURM_NTASKS": "8", "SLURM_PROCID": "0"},
            "outputs/slurm-123_${hydra:runtime.choices.model}_${hydra:runtime.choices.data}",
        ),
        (
            {
                "SLURM_JOB_ID": "130",
                "SLURM_ARRAY_JOB_ID": "120",
                "SLURM_ARRAY_TASK_ID": "3",
                "SLURM_NTASKS": "2",
            },
            "outputs/slurm-120_3_${hydra:runtime.choices.model}_${hydra:runtime.choices.data}",
        ),
    ],
)
def test_external_launch_names_the_run_dir_after_its_run_id(environ, run_dir):
    assert prepare_argv(ARGV, environ) == [*ARGV, f"hydra.run.dir={run_dir}"]


def test_external_launch_keeps_a_given_run_dir_and_single_process_runs():
    given = [*ARGV, "hydra.run.dir=/shared/run"]
    assert prepare_argv(given, {"TORCHELASTIC_RUN_ID": "none", "WORLD_SIZE": "2"}) == given
    one_task = {"SLURM_JOB_ID": "5", "SLURM_NTASKS": "1"}  # plain sbatch, Lightning spawns
    assert prepare_argv(ARGV, one_task) == ARGV


@pytest.mark.parametrize(
    ("environ", "argv", "message"),
    [
        ({"TORCHELASTIC_RUN_ID": "none", "WORLD_SIZE": "2"}, ARGV, r"--rdzv-id"),
        ({"NODE_RANK": "1", "WORLD_SIZE": "4"}, ARGV, r"pass hydra.run.dir="),
        ({"NODE_RANK": "0", "WORLD_SIZE": "4"}, ARGV, r"NODE_RANK"),  # node 0 refuses too
        ({"TORCHELASTIC_RUN_ID": "j", "WORLD_SIZE": "2"}, [*ARGV, "-m"], r"multirun"),
    ],
)
def test_external_launch_without_a_shared_dir_is_refused(environ, argv, message):
    with pytest.raises(LaunchError, match=message):
        prepare_argv(argv, environ)


def test_distributed_job_restores_what_lightning_changed(monkeypatch):
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.setenv("MASTER_PORT", "1234")
    threads = torch.get_num_threads()
    with distributed_job(["seed=1"], "/runs/a b") as _:
        assert json.loads(os.environ[CHILD_ARGS_VARIABLE]) == [
            "seed=1",
            "hydra.run.dir='/runs/a b'",
        ]
        # As Lightning's launcher does in rank 0 when it starts children:
        os.environ.update(LOCAL_RANK="0", MASTER_PORT="5555", WORLD_SIZE="2")
        torch.set_num_threads(1)
    assert "LOCAL_RANK" not in os.environ and "WORLD_SIZE" not in os.environ
    assert os.environ["MASTER_PORT"] == "1234"
    assert CHILD_ARGS_VARIABLE not in os.environ
    assert torch.get_num_threads() == threads
