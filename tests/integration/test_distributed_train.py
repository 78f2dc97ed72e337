"""Distributed `segkit.train` on this CPU (gloo): Lightning-started DDP, torchrun nodes, srun
tasks, a multirun of DDP jobs and the SLURM launcher's sbatch script."""

from __future__ import annotations

import csv
import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from segkit.run.checkpoints import CONFIG_KEY
from tests.conftest import TINY_OVERRIDES
from tests.integration.test_train_cli import run_train

REPO = Path(__file__).resolve().parents[2]
SAVE_RANK_WEIGHTS = (
    "+callbacks.rank_weights._target_=tests.integration.rank_weights.SaveRankWeights"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_processes(commands: list[list[str]], cwd: Path, envs: list[dict[str, str]]) -> list[str]:
    """Start the processes together (as nodes or tasks of one job); their outputs."""
    procs = [
        subprocess.Popen(c, cwd=cwd, env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for c, e in zip(commands, envs, strict=True)
    ]
    try:
        outputs = [p.communicate(timeout=600)[0].decode() for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, out in zip(procs, outputs, strict=True):
        assert p.returncode == 0, out[-3000:]
    return outputs


def only_files_of_rank_zero(run_dir: Path) -> None:
    """One writer: Hydra's files and one log, nothing from the other ranks."""
    assert sorted(p.name for p in run_dir.glob("*.log")) == ["train.log"]
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    assert (run_dir / "metrics.json").is_file()


def test_two_processes_evaluate_exactly_like_one(tmp_path):
    # 5 val and 3 test images: not divisible by the 2 processes.
    data = [*TINY_OVERRIDES, "data.test_size=3"]
    two = tmp_path / "two"
    proc = run_train(*data, "trainer=ddp_cpu", f"hydra.run.dir={two}", cwd=tmp_path)
    assert proc.stdout.count("segkit: training finished") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["two"]  # no other rank's outputs/
    only_files_of_rank_zero(two)
    with open(two / "csv" / "metrics.csv") as f:  # logged by rank 0 only, once per evaluation:
        rows = [row for row in csv.DictReader(f) if row.get("val/miou")]
    # The epoch's validation; the final one of the best checkpoint goes to metrics.json only.
    assert len(rows) == 1
    best = two / "checkpoints" / "best.ckpt"
    assert any(k.startswith("net.") for k in torch.load(best, weights_only=True)["state_dict"])

    # One process evaluates the same weights on the same images (no training).
    one = tmp_path / "one"
    no_training = ["trainer.limit_train_batches=0", "scheduler=none"]
    run_train(*data, *no_training, f"model.pretrained={best}", f"hydra.run.dir={one}")
    by_two = json.loads((two / "metrics.json").read_text())
    by_one = json.loads((one / "metrics.json").read_text())
    evaluated = sorted(k for k in by_two if k.startswith(("val/", "test/")))
    assert {"val/miou", "val/acc", "val/loss", "test/miou", "test/loss"} <= set(evaluated)
    assert any(k.startswith("val/iou/") for k in evaluated)
    for key in evaluated:
        if by_two[key] is None:  # an IoU with no defined value (class absent, never predicted)
            assert by_one[key] is None, key
        else:
            assert by_one[key] == pytest.approx(by_two[key], rel=1e-6, abs=1e-6), key


def test_two_torchrun_nodes_share_one_run_dir_and_end_with_equal_weights(tmp_path):
    # Two "nodes" on localhost, one process each, as on two machines: torchrun --nnodes=2.
    port, weights, work = free_port(), tmp_path / "weights", tmp_path / "work"
    work.mkdir()

    def node(rank: int) -> list[str]:
        return [
            *(sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1"),
            *(f"--node-rank={rank}", "--master-addr=127.0.0.1", f"--master-port={port}"),
            *("--rdzv-id=segkit-test", "-m", "segkit.train", *TINY_OVERRIDES),
            *("trainer=ddp_cpu", "trainer.devices=1", "trainer.num_nodes=2"),
            *(SAVE_RANK_WEIGHTS, f"+callbacks.rank_weights.out_dir={weights}"),
        ]

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    outputs = run_processes([node(0), node(1)], work, [env, env])
    assert sum(out.count("segkit: training finished") for out in outputs) == 1
    # Named after torchrun's run id, so both nodes chose the same directory.
    (run_dir,) = (work / "outputs").iterdir()
    assert run_dir.name == "torchrun-segkit-test_unet_synthetic"
    only_files_of_rank_zero(run_dir)
    ranks = [torch.load(weights / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    # 8 training images shared by 2 ranks: one batch of 4 each, one averaged step.
    assert ranks[0]["global_step"] == ranks[1]["global_step"] == 1
    for key, value in ranks[0]["state"].items():
        torch.testing.assert_close(value, ranks[1]["state"][key], rtol=0, atol=0, msg=key)
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    for key, value in last.items():
        torch.testing.assert_close(value, ranks[0]["state"][key], rtol=0, atol=0, msg=key)


def srun_environments(**extra: str) -> list[dict[str, str]]:
    """What `srun` gives the 2 tasks of a SLURM job step (one node); Lightning wires DDP from it."""
    job = {
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NAME": "segkit",
        "SLURM_NTASKS": "2",
        "SLURM_NTASKS_PER_NODE": "2",
        "SLURM_NODEID": "0",
        "SLURM_NODELIST": "localhost",
    }
    return [
        {**os.environ, **job, **extra, "SLURM_PROCID": str(r), "SLURM_LOCALID": str(r)}
        for r in (0, 1)
    ]


def test_two_srun_tasks_use_lightnings_slurm_environment(tmp_path):
    command = [sys.executable, "-m", "segkit.train", *TINY_OVERRIDES, "trainer=ddp_cpu"]
    outputs = run_processes([command, command], tmp_path, srun_environments())
    assert "SLURM auto-requeueing enabled" in outputs[0]
    assert "MEMBER: 2/2" in outputs[1]
    (run_dir,) = (tmp_path / "outputs").iterdir()
    assert run_dir.name == "slurm-4242_unet_synthetic"
    only_files_of_rank_zero(run_dir)
    assert math.isfinite(json.loads((run_dir / "metrics.json").read_text())["val/miou"])


def test_slurm_preemption_saves_requeues_and_the_requeued_job_resumes(tmp_path):
    # `scontrol` stand-in records the requeue Lightning asks for.
    bin_dir, requeued = tmp_path / "bin", tmp_path / "scontrol.log"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text(f'#!/bin/sh\necho "$@" >> {requeued}\n')
    (bin_dir / "scontrol").chmod(0o755)
    envs = srun_environments(PATH=f"{bin_dir}:{os.environ['PATH']}", PYTHONPATH=str(REPO))
    work = tmp_path / "work"
    work.mkdir()
    command = [
        *(sys.executable, "-m", "segkit.train", *TINY_OVERRIDES, "trainer=ddp_cpu"),
        *("data.train_size=16", "trainer.max_epochs=2", "trainer.limit_train_batches=1.0"),
        "+callbacks.preempt._target_=tests.integration.preempt.PreemptAtStep",
        "+callbacks.preempt.step=3",
    ]
    procs = [subprocess.Popen(command, cwd=work, env=e) for e in envs]
    assert [p.wait(timeout=600) for p in procs] == [143, 143]  # killed at step 3 of 4
    assert requeued.read_text().split() == ["requeue", "4242"]
    (run_dir,) = (work / "outputs").iterdir()
    saved = torch.load(run_dir / "hpc_ckpt_1.ckpt", weights_only=True)
    assert saved["global_step"] == 3

    # SLURM restarts the same job: same command, same environment, same run dir.
    outputs = run_processes([command, command], work, envs)
    assert f"Restoring states from the checkpoint path at {run_dir}/hpc_ckpt_1.ckpt" in outputs[0]
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 4  # 2 epochs x 2 steps, as without the preemption
    # The requeued job continues the W&B run of the checkpoint it resumed from.
    run_id = saved[CONFIG_KEY]["logger"]["wandb"]["id"]
    assert last[CONFIG_KEY]["logger"]["wandb"]["id"] == run_id
    assert {p.name for p in (run_dir / "wandb").glob("offline-run-*/run-*.wandb")} == {
        f"run-{run_id}.wandb"
    }
    assert math.isfinite(json.loads((run_dir / "metrics.json").read_text())["val/miou"])


def test_multirun_of_two_ddp_jobs_keeps_each_job_in_its_dir(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_train(
        "-m",
        *TINY_OVERRIDES,
        "trainer=ddp_cpu",
        "seed=0,1",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep"]
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert [p.name for p in jobs] == ["0_unet_synthetic", "1_unet_synthetic"]
    for seed, job in enumerate(jobs):
        only_files_of_rank_zero(job)
        assert (job / "checkpoints" / "best.ckpt").is_file()
        assert f"seed: {seed}\n" in (job / ".hydra" / "config.yaml").read_text()
    assert proc.stdout.count("segkit: training finished") == 2
    # Each job's second process ran that job only (not the whole sweep again).
    log = proc.stdout + proc.stderr
    assert log.count("[rank: 1] Seed set to 0") == log.count("[rank: 1] Seed set to 1") == 1


def test_slurm_launcher_writes_the_expected_sbatch_script(tmp_path):
    # Stand-ins: `srun` only has to exist; `sbatch` keeps the script and refuses the job.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "sbatch").write_text('#!/bin/sh\ncp "$1" "$SBATCH_COPY"\nexit 1\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    script = tmp_path / "job.sh"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SBATCH_COPY": str(script)}
    run_train(
        *("-m", "hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4"),
        *("trainer.num_nodes=2", "hydra.launcher.partition=gpu", f"hydra.sweep.dir={tmp_path}/s"),
        env=env,
        check=False,
    )
    directives = [line for line in script.read_text().splitlines() if line.startswith("#SBATCH")]
    for expected in (
        "--nodes=2",
        "--ntasks-per-node=4",  # one task per GPU: Lightning's SLURM environment
        "--gpus-per-node=4",
        "--partition=gpu",
        "--time=1440",
        "--signal=USR1@120",  # Lightning's auto-requeue signal, not submitit's USR2
    ):
        assert f"#SBATCH {expected}" in directives
    assert sum(d.startswith("#SBATCH --signal=") for d in directives) == 1
    assert "-m submitit.core._submit" in script.read_text()
