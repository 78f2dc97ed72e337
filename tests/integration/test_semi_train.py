"""`segkit.train model=semi` end to end: logged metrics, DDP (sharded unlabeled loaders, equal
networks on every rank) and a bitwise resume with the EMA teacher."""

from __future__ import annotations

import csv
import json

import torch

from tests.conftest import TINY_OVERRIDES
from tests.integration.test_distributed_train import SAVE_RANK_WEIGHTS
from tests.integration.test_reliability import CALLBACKS, assert_same_run, ok, train, weights

#: UniMatch with an EMA teacher on 16 synthetic scenes, half labeled: 2 steps per epoch.
SEMI = [
    *TINY_OVERRIDES,
    "model=semi",
    "model/method=unimatch",
    "model.consistency.ema_momentum=0.9",
    "model.consistency.threshold=0.5",  # some pseudo-labels count within a few steps
    "data.train_size=16",
    "data.labeled_fraction=0.5",
    "trainer.limit_train_batches=1.0",
    "trainer.log_every_n_steps=1",
    "test=false",
    "logger=csv",
]


def test_semi_run_logs_its_terms_and_resumes_bitwise_with_its_teacher(tmp_path):
    run = [*SEMI, "trainer.max_epochs=3", "trainer.deterministic=true"]
    uninterrupted = tmp_path / "uninterrupted"
    ok(train(*run, f"hydra.run.dir={uninterrupted}"))
    rows = list(csv.DictReader((uninterrupted / "csv" / "metrics.csv").open()))
    for key in ("train/sup_loss", "train/unsup_loss", "train/mask_ratio", "train/fp_loss"):
        values = [float(r[key]) for r in rows if r.get(key)]
        assert len(values) == 6 and all(v == v for v in values), key  # every step, finite
    # the synthetic data's hidden masks score the pseudo-labels (logging only)
    accuracy = [float(r["train/pseudo_acc_all"]) for r in rows if r.get("train/pseudo_acc_all")]
    assert len(accuracy) == 6 and all(0.0 <= a <= 1.0 for a in accuracy)
    stored = weights(uninterrupted)
    assert any(k.startswith("teacher.net.") for k in stored)
    assert int(stored["teacher.updates"]) == 6
    assert json.loads((uninterrupted / "labeled_split.json").read_text())["labeled_fraction"] == 0.5

    killed = tmp_path / "killed"
    killer = [f"+callbacks.kill._target_={CALLBACKS}.SignalAtStep", "+callbacks.kill.step=5"]
    proc = train(*run, *killer, "+callbacks.kill.signal_name=SIGKILL", f"hydra.run.dir={killed}")
    assert proc.returncode == -9  # in epoch 3, after the checkpoint of epoch 2 (step 4)
    ok(train(f"resume={killed}"))
    assert_same_run(killed, uninterrupted)  # student, teacher, optimizer path: bitwise


def test_ddp_shards_the_unlabeled_images_and_keeps_the_networks_equal(tmp_path):
    weights_dir, names_dir = tmp_path / "weights", tmp_path / "names"
    ok(
        train(
            *SEMI,
            "trainer=ddp_cpu",
            "data.batch_size=2",
            "trainer.max_epochs=1",
            SAVE_RANK_WEIGHTS,
            f"+callbacks.rank_weights.out_dir={weights_dir}",
            "+callbacks.names._target_=tests.integration.unlabeled_names.SaveUnlabeledNames",
            f"+callbacks.names.out_dir={names_dir}",
            f"hydra.run.dir={tmp_path / 'run'}",
        )
    )
    ranks = [torch.load(weights_dir / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert ranks[0]["global_step"] == ranks[1]["global_step"] == 2  # 8 unlabeled / (2 x 2)
    for key, value in ranks[0]["state"].items():
        torch.testing.assert_close(value, ranks[1]["state"][key], rtol=0, atol=0, msg=key)
    assert any(k.startswith("teacher.net.") for k in ranks[0]["state"])
    seen = [json.loads((names_dir / f"names{r}.json").read_text())["0"] for r in (0, 1)]
    assert len(seen[0]) == len(seen[1]) == 4
    assert not set(seen[0]) & set(seen[1])  # each rank its own share of the unlabeled images
    split = json.loads((tmp_path / "run" / "labeled_split.json").read_text())
    assert set(seen[0]) | set(seen[1]) == set(split["unlabeled"])
