"""`segkit.train model=adapt data=synthetic_shift` end to end: logged metrics on both domains,
a bitwise resume with DACS's EMA teacher, and DDP (sharded target loaders, equal networks on
every rank) for an adversarial method."""

from __future__ import annotations

import csv
import json

import torch

from tests.integration.test_distributed_train import SAVE_RANK_WEIGHTS
from tests.integration.test_reliability import CALLBACKS, assert_same_run, ok, train, weights

#: 8 source and 8 target scenes of 64x64, batches of 4: 2 steps per epoch.
ADAPT = [
    "model=adapt",
    "data=synthetic_shift",
    "data.batch_size=4",
    "data.source.train_size=8",
    "data.target.train_size=8",
    "data.source.val_size=4",
    "data.target.val_size=4",
    "data.target.test_size=4",
    "trainer.num_sanity_val_steps=0",
    "trainer.enable_model_summary=false",
    "trainer.enable_progress_bar=false",
    "trainer.log_every_n_steps=1",
    "test=false",
    "logger=csv",
]


def test_dacs_logs_its_terms_on_both_domains_and_resumes_bitwise_with_its_teacher(tmp_path):
    run = [
        *ADAPT,
        "model/method=dacs",
        "model.method.ema_momentum=0.9",
        "model.method.threshold=0.5",  # some pseudo-labels weigh within a few steps
        "trainer.max_epochs=3",
        "trainer.deterministic=true",
    ]
    uninterrupted = tmp_path / "uninterrupted"
    ok(train(*run, f"hydra.run.dir={uninterrupted}"))
    rows = list(csv.DictReader((uninterrupted / "csv" / "metrics.csv").open()))
    for key in ("train/sup_loss", "train/mix_loss", "train/pseudo_weight", "train/pseudo_acc_all"):
        values = [float(r[key]) for r in rows if r.get(key)]
        assert len(values) == 6 and all(v == v for v in values), key  # every step, finite
    metrics = json.loads((uninterrupted / "metrics.json").read_text())
    assert 0.0 <= metrics["val/miou"] <= 1.0 and 0.0 <= metrics["val_source/miou"] <= 1.0
    assert metrics["val/miou"] != metrics["val_source/miou"]  # two domains, two scores
    stored = weights(uninterrupted)
    assert int(stored["teacher.updates"]) == 6

    killed = tmp_path / "killed"
    killer = [f"+callbacks.kill._target_={CALLBACKS}.SignalAtStep", "+callbacks.kill.step=5"]
    proc = train(*run, *killer, "+callbacks.kill.signal_name=SIGKILL", f"hydra.run.dir={killed}")
    assert proc.returncode == -9  # in epoch 3, after the checkpoint of epoch 2 (step 4)
    ok(train(f"resume={killed}"))
    assert_same_run(killed, uninterrupted)  # student, teacher, ClassMix draws: bitwise


def test_ddp_shards_the_target_and_keeps_segmenter_and_discriminator_equal(tmp_path):
    weights_dir, names_dir = tmp_path / "weights", tmp_path / "names"
    ok(
        train(
            *ADAPT,
            "model/method=advent",
            "trainer=ddp_cpu",
            "data.batch_size=2",
            "trainer.max_epochs=1",
            "trainer.limit_val_batches=1",
            SAVE_RANK_WEIGHTS,
            f"+callbacks.rank_weights.out_dir={weights_dir}",
            "+callbacks.names._target_=tests.integration.unlabeled_names.SaveUnlabeledNames",
            f"+callbacks.names.out_dir={names_dir}",
            "+callbacks.names.part=target",
            f"hydra.run.dir={tmp_path / 'run'}",
        )
    )
    ranks = [torch.load(weights_dir / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    # 8 target scenes / (2 ranks x 2): 2 batches, a segmenter and a discriminator step each
    assert ranks[0]["global_step"] == ranks[1]["global_step"] == 4
    assert any(k.startswith("discriminator.") for k in ranks[0]["state"])
    # Weights are identical (gradients averaged); batch-norm running statistics are each
    # rank's own, as in any DDP run without trainer.sync_batchnorm (the segmenter sees source,
    # target and, for DACS, mixed batches in separate forward passes).
    statistics = ("running_mean", "running_var", "num_batches_tracked")
    compared = [k for k in ranks[0]["state"] if not k.endswith(statistics)]
    assert any(k.startswith("net.") for k in compared)
    for key in compared:
        value = ranks[0]["state"][key]
        torch.testing.assert_close(value, ranks[1]["state"][key], rtol=0, atol=0, msg=key)
    seen = [json.loads((names_dir / f"names{r}.json").read_text())["0"] for r in (0, 1)]
    assert len(seen[0]) == len(seen[1]) == 4
    assert not set(seen[0]) & set(seen[1])  # each rank its own share of the target images
