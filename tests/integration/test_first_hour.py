"""A user's first hour, without silent traps: config mistakes fail at once in one line and
leave the run folder usable, unusable checkpoints are named for what is wrong with them, and
evaluations keep their history."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch

from segkit.run.compose import compose_config
from tests.conftest import TINY_OVERRIDES
from tests.integration.test_eval_predict_export import Exploit
from tests.unit.test_old_checkpoints import FIXTURES

TINY = [*TINY_OVERRIDES, "logger=csv", "test=false"]


def train(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "segkit.train", *args], capture_output=True, text=True, timeout=300
    )


def errors(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("segkit:")]


def test_a_bad_trainer_value_fails_at_once_and_the_folder_stays_usable(tmp_path):
    run_dir = tmp_path / "run"
    bad = train(*TINY, "trainer.precision=bogus", f"hydra.run.dir={run_dir}")
    assert bad.returncode == 2
    assert errors(bad) == [
        "segkit: config error: trainer.precision='bogus' is invalid: expected one of auto, "
        "32-true, bf16-mixed, 16-mixed, bf16-true, 16-true, 64-true, transformer-engine, "
        "transformer-engine-float16, bf16"
    ]
    assert not run_dir.exists()  # no provenance, W&B dir or log left to block the retry
    typo = train(*TINY, "model=unett", f"hydra.run.dir={run_dir}")
    assert typo.returncode == 2 and errors(typo)[0].startswith(
        "segkit: config error: model=unett: no option 'unett' in the model group; did you mean "
        "unet or unet_gan?"
    )
    good = train(*TINY, f"hydra.run.dir={run_dir}")
    assert good.returncode == 0, good.stderr[-2000:]
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()


def test_unusable_checkpoints_are_named_for_what_is_wrong_in_one_line(tmp_path):
    marker = tmp_path / "code-ran"
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "segkit_config": {}, "payload": Exploit(marker)}, evil)
    run = tmp_path / "stopped"  # a run dir to resume, whose last checkpoint is the evil one
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text("[]\n")
    (run / "checkpoints").mkdir()
    shutil.copy(evil, run / "checkpoints" / "last.ckpt")
    for args in ([f"ckpt_path={evil}", f"hydra.run.dir={tmp_path / 'new'}"], [f"resume={run}"]):
        proc = train(*TINY, *args)
        assert proc.returncode == 2 and len(errors(proc)) == 1, proc.stderr[-2000:]
        assert "refused: it holds pickled Python objects" in errors(proc)[0]
        assert "Traceback" not in proc.stderr
    assert not marker.exists() and not (tmp_path / "new").exists()
    notes = tmp_path / "x.ckpt"
    notes.write_text("my notes, not a checkpoint\n")
    proc = train(*TINY, f"ckpt_path={notes}", f"hydra.run.dir={tmp_path / 'new'}")
    assert errors(proc) == [
        f"segkit: {notes}: not a PyTorch checkpoint: torch.save writes a zip archive, this file "
        "starts with b'my notes, no'"
    ]
    # A checkpoint of another family: refused with both families, before training.
    proc = train(*TINY, "model=unet_gan", f"ckpt_path={FIXTURES / 'unet.ckpt'}",
                 f"hydra.run.dir={tmp_path / 'gan'}")  # fmt: skip
    assert proc.returncode == 2 and errors(proc) == [
        f"segkit: config error: ckpt_path: {FIXTURES / 'unet.ckpt'}: a checkpoint of a semantic "
        "model; this config trains an adversarial model (model._target_ AdversarialSegmentation)"
    ]


def test_evaluations_are_kept_side_by_side_with_what_produced_them(tmp_path):
    from segkit.eval import evaluate
    from segkit.run.evaluation_outputs import sha256

    ckpt = tmp_path / "run" / "checkpoints" / "best.ckpt"
    ckpt.parent.mkdir(parents=True)
    shutil.copy(FIXTURES / "unet.ckpt", ckpt)
    base = [f"ckpt_path={ckpt}", "precision=32-true", "device=cpu", "num_workers=0"]
    first = evaluate(compose_config("eval", base), None, "whole")
    evaluate(compose_config("eval", base), None, "whole")  # the same again: kept beside it
    flipped = evaluate(compose_config("eval", [*base, "inference=flip"]), None, "flip")
    folders = sorted(p.name for p in (tmp_path / "run" / "eval" / "val").iterdir())
    assert folders == ["best-flip", "best-whole", "best-whole-2"]
    record = json.loads((tmp_path / "run/eval/val/best-flip/evaluation.json").read_text())
    assert record["checkpoint"] == {"path": str(ckpt.resolve()), "sha256": sha256(ckpt)}
    assert record["inference"]["name"] == "flip" and record["inference"]["flip"] is True
    assert record["provenance"]["precision"] == "32-true" and record["metrics"]["val/miou"] == (
        pytest.approx(flipped["val/miou"])
    )
    # mmsegmentation's table: aAcc (val/acc), mAcc and per-class accuracy beside IoU.
    assert {"val/acc", "val/macc", "val/acc/disc", "val/iou/disc"} <= set(first)
    rows = (tmp_path / "run/eval/val/best-whole/per_class.csv").read_text().splitlines()
    assert rows[0] == "class,iou,acc" and rows[2].startswith("disc,")
    assert float(rows[2].split(",")[2]) == pytest.approx(first["val/acc/disc"], abs=1e-6)
