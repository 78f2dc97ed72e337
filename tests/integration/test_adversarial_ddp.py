"""Adversarial training under DDP: 2 CPU processes (gloo) train both networks in step."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.unit.test_adversarial_task import make_task

REPO = Path(__file__).resolve().parents[2]


def run(method: str, out: Path) -> subprocess.CompletedProcess:
    """The DDP run with find_unused_parameters=True, as the GAN configs set it."""
    return subprocess.run(
        [sys.executable, "-m", "tests.integration.ddp_adversarial_run", method, str(out), "true"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.parametrize("method", ["luc2016", "hung2018"])
def test_both_networks_stay_identical_across_ranks(tmp_path, method):
    proc = run(method, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    # 3 batches per rank, each one generator and one discriminator step.
    assert ranks[0]["global_step"] == ranks[1]["global_step"] == 6
    start = make_task(method).state_dict()
    for key, value in ranks[0]["state"].items():
        # Ranks trained on different halves of the data, yet gradients were averaged.
        torch.testing.assert_close(value, ranks[1]["state"][key], rtol=0, atol=0, msg=key)
    moved = [k for k, v in ranks[0]["state"].items() if not torch.equal(v, start[k])]
    assert any(k.startswith("net.") for k in moved)
    assert any(k.startswith("discriminator.") for k in moved)
