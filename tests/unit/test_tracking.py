"""W&B mode decision (no network), run ids kept across resumes, sweep names and resolvers."""

from __future__ import annotations

import re
import sys

import pytest
import torch

from segkit.run.checkpoints import CONFIG_KEY
from segkit.run.config_checks import ConfigError, check_train_config
from segkit.run.wandb_run import checkpoint_run_id, run_id_to_use
from segkit.tracking.resolvers import sweep_name
from segkit.tracking.wandb_mode import decide_mode, has_credentials


def _env(tmp_path, **extra):
    """An environment whose home dir has no netrc file (a fresh machine)."""
    return {"HOME": str(tmp_path), **extra}


def _netrc(tmp_path, host="api.wandb.ai", password="k" * 40):
    path = tmp_path / ".netrc"
    path.write_text(f"machine {host}\n  login user\n  password {password}\n")
    return path


def test_no_credentials_means_offline(tmp_path):
    mode, reason = decide_mode("auto", _env(tmp_path))
    assert mode == "offline"
    assert "no W&B credentials" in reason


def test_api_key_means_online(tmp_path):
    assert decide_mode("auto", _env(tmp_path, WANDB_API_KEY="x" * 40))[0] == "online"
    assert decide_mode("auto", _env(tmp_path, WANDB_API_KEY="  "))[0] == "offline"


def test_wandb_login_netrc_entry_means_online(tmp_path):
    _netrc(tmp_path)
    assert has_credentials(_env(tmp_path))
    assert decide_mode("auto", _env(tmp_path)) == ("online", "W&B credentials found")


def test_netrc_entry_must_match_the_wandb_host(tmp_path):
    _netrc(tmp_path, host="wandb.example.org")
    assert decide_mode("auto", _env(tmp_path))[0] == "offline"
    server = _env(tmp_path, WANDB_BASE_URL="https://wandb.example.org")
    assert decide_mode("auto", server)[0] == "online"


def test_netrc_named_by_NETRC_and_unreadable_netrc(tmp_path):
    other = tmp_path / "elsewhere"
    other.mkdir()
    path = _netrc(other)
    assert decide_mode("auto", _env(tmp_path, NETRC=str(path)))[0] == "online"
    (tmp_path / ".netrc").write_text("machine\n")  # a parse error: no credentials
    assert decide_mode("auto", _env(tmp_path))[0] == "offline"


@pytest.mark.parametrize(
    ("env_mode", "expected"),
    [("offline", "offline"), ("dryrun", "offline"), ("disabled", "disabled")],
)
def test_wandb_mode_variable_is_followed_even_with_credentials(tmp_path, env_mode, expected):
    env = _env(tmp_path, WANDB_API_KEY="x" * 40, WANDB_MODE=env_mode)
    assert decide_mode("auto", env) == (expected, f"WANDB_MODE={env_mode}")


@pytest.mark.parametrize("requested", ["online", "offline", "disabled"])
def test_explicit_mode_wins(tmp_path, requested):
    env = _env(tmp_path, WANDB_MODE="offline") if requested == "online" else _env(tmp_path)
    assert decide_mode(requested, env) == (requested, f"logger.wandb.mode={requested}")


def test_unknown_mode_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"logger\.wandb\.mode='cloud'"):
        decide_mode("cloud", _env(tmp_path))


def test_bad_wandb_settings_are_config_errors(compose_train):
    with pytest.raises(ConfigError, match=r"logger.wandb.mode='cloud' is invalid"):
        check_train_config(compose_train("logger.wandb.mode=cloud"))
    with pytest.raises(ConfigError, match=r"logger.wandb.log_model='best' is invalid"):
        check_train_config(compose_train("logger.wandb.log_model=best"))


def test_default_logger_is_wandb_with_csv_beside(compose_train):
    cfg = compose_train()
    assert set(cfg.logger) == {"wandb", "csv"}
    assert cfg.logger.wandb.name == "unet_synthetic_seed42"
    assert cfg.logger.wandb.group is None  # a single run: no sweep group
    assert list(cfg.logger.wandb.tags) == [
        "model=unet",
        "data=synthetic",
        "loss=ce",
        "method=supervised",
        "seed=42",
    ]
    for overrides, tag in (
        (["model=unet_gan"], "method=luc2016"),
        (["model=semi", "model/method=unimatch"], "method=unimatch"),  # was tagged supervised
        (["model=adapt", "model/method=dacs", "data=synthetic_shift"], "method=dacs"),
    ):
        assert compose_train(*overrides).logger.wandb.tags[3] == tag
    assert (cfg.logger.wandb.summary_metric, cfg.logger.wandb.summary_mode) == ("val/miou", "max")


def test_run_id_comes_from_the_resumed_checkpoint(tmp_path):
    ckpt = tmp_path / "last.ckpt"
    torch.save({"state_dict": {}, CONFIG_KEY: {"logger": {"wandb": {"id": "abc12345"}}}}, ckpt)
    assert checkpoint_run_id(str(ckpt)) == "abc12345"
    assert run_id_to_use(None, str(ckpt)) == "abc12345"
    assert run_id_to_use("given123", str(ckpt)) == "given123"


def test_a_requeued_slurm_job_continues_the_run_of_its_newest_hpc_checkpoint(tmp_path):
    for number, run_id in ((1, "first111"), (12, "newest12"), (2, "second22")):
        saved = {CONFIG_KEY: {"logger": {"wandb": {"id": run_id}}}}
        torch.save(saved, tmp_path / f"hpc_ckpt_{number}.ckpt")
    assert run_id_to_use(None, None, tmp_path) == "newest12"
    # an explicit checkpoint wins over Lightning's automatic one
    (tmp_path / "other").mkdir()
    torch.save(
        {CONFIG_KEY: {"logger": {"wandb": {"id": "explicit"}}}}, tmp_path / "other" / "x.ckpt"
    )
    assert run_id_to_use(None, str(tmp_path / "other" / "x.ckpt"), tmp_path) == "explicit"


def test_new_run_id_without_a_stored_one(tmp_path):
    ckpt = tmp_path / "plain.ckpt"
    torch.save({"state_dict": {}, CONFIG_KEY: {"logger": {"csv": {}}}}, ckpt)
    fresh = {run_id_to_use(None, p) for p in (None, str(ckpt), str(tmp_path / "missing.ckpt"))}
    assert len(fresh) == 3
    assert all(re.fullmatch(r"[a-z0-9]{8}", i) for i in fresh)
    (tmp_path / "bad.ckpt").write_bytes(b"not a checkpoint")
    assert checkpoint_run_id(str(tmp_path / "bad.ckpt")) is None  # Lightning reports it


@pytest.mark.parametrize(
    ("sweep_dir", "name"),
    [
        ("multirun/2026-11-22/12-30-00", "sweep-2026-11-22_12-30-00"),
        ("/abs/multirun/2026-11-22/12-30-00/", "sweep-2026-11-22_12-30-00"),
        ("sweeps/lr_search", "sweep-lr_search"),
    ],
)
def test_sweep_names(sweep_dir, name):
    assert sweep_name(sweep_dir) == name


def test_a_search_space_in_hydras_grammar_becomes_optuna_suggestions(monkeypatch, capsys):
    import optuna

    from segkit.run.sweep import main as sweep
    from segkit.tracking.optuna_space import SearchSpaceError, parse_space, suggest

    space = parse_space(
        {
            "optimizer.lr": "tag(log, interval(1e-4, 1e-2))",
            "loss": "choice(ce, ce_dice, focal)",
            "trainer.max_epochs": "range(5, 20, step=5)",
            "data.batch_size": "8",
        }
    )
    trial = optuna.trial.FixedTrial(
        {"optimizer.lr": 3e-3, "loss": "focal", "trainer.max_epochs": 15}
    )
    assert suggest(trial, space) == [
        "optimizer.lr=0.003", "loss=focal", "trainer.max_epochs=15", "data.batch_size=8"
    ]  # fmt: skip
    study = optuna.create_study()
    study.optimize(lambda t: len(suggest(t, space)), n_trials=1)
    distributions = study.trials[0].distributions
    assert distributions["optimizer.lr"].log and distributions["trainer.max_epochs"].step == 5
    with pytest.raises(SearchSpaceError, match=r"sweep.params.loss="):
        parse_space({"loss": "choice(ce,"})
    # Without optuna: one line naming the extra, before any trial.
    capsys.readouterr()
    monkeypatch.setitem(sys.modules, "optuna", None)
    assert sweep(["hparams_search=optuna", "logger=csv"]) == 2
    assert capsys.readouterr().err.strip() == (
        "segkit: config error: hparams_search needs optuna: pip install 'segkit[optuna]'"
    )


def test_finish_marks_a_failed_run_and_prints_the_sync_command(tmp_path, capsys):
    from segkit.tracking.wandb_logger import finish_wandb, wandb_logger
    from tests.integration.wandb_offline import read_records

    logger = wandb_logger(
        save_dir=str(tmp_path), mode="offline", id="failed01", summary_metric="val/miou"
    )
    logger.log_metrics({"val/miou": 0.5}, step=0)
    finish_wandb([logger], exit_code=1)
    import wandb

    wandb.teardown()  # wandb-core writes the run file on its own; wait until it has finished

    (run_file,) = (tmp_path / "wandb").glob("offline-run-*/run-failed01.wandb")
    exits = [r.exit.exit_code for r in read_records(run_file) if r.HasField("exit")]
    assert exits == [1]
    printed = capsys.readouterr().out
    reason = "logger.wandb.mode=offline"
    assert f"saved offline ({reason}); upload it with:\n  wandb sync {run_file.parent}" in printed
    finish_wandb([logger])  # finishing twice, or a logger that never started, is harmless


def test_the_pruning_callback_reports_each_validation_and_stops_a_pruned_trial(tmp_path):
    """What a trial process does (`segkit.callbacks.optuna_pruning`): report the monitored
    value at the step to the study's storage, ask the sweep's pruner, and on a prune stop
    training (every rank: the decision is broadcast) and mark the run dir."""
    import json
    from types import SimpleNamespace

    import optuna

    from segkit.callbacks.optuna_pruning import PRUNED_FILE, OptunaPruning

    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    trial = study.ask()
    pruner = optuna.pruners.ThresholdPruner(lower=0.5)
    callback = OptunaPruning(storage, "s", trial._trial_id, "val/miou", pruner)
    broadcasts = []

    def trainer(value: float, step: int):
        return SimpleNamespace(
            sanity_checking=False, is_global_zero=True, global_step=step, current_epoch=step // 2,
            callback_metrics={"val/miou": torch.tensor(value)}, should_stop=False,
            strategy=SimpleNamespace(broadcast=lambda x, src: broadcasts.append(x) or x),
            default_root_dir=str(tmp_path),
        )  # fmt: skip

    good = trainer(0.7, 2)
    callback.on_validation_end(good, None)
    assert not good.should_stop and not (tmp_path / PRUNED_FILE).exists()
    bad = trainer(0.3, 4)
    callback.on_validation_end(bad, None)
    assert bad.should_stop and broadcasts == [False, True]
    assert json.loads((tmp_path / PRUNED_FILE).read_text())["step"] == 4
    stored = optuna.load_study(study_name="s", storage=storage).trials[0]
    assert stored.intermediate_values == {2: pytest.approx(0.7), 4: pytest.approx(0.3)}
