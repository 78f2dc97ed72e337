"""The one rule for reusing run dirs (command line and `segkit.fit`): what counts as a run,
refusal with the ways out, overwrite, and dirs left by runs that never started."""

from __future__ import annotations

import pytest

from segkit.run.run_dirs import RunDirError, claim_run_dir, discard_unstarted, holds_run


def test_a_dir_holds_a_run_once_training_left_something_to_lose(tmp_path):
    (tmp_path / ".hydra").mkdir()
    (tmp_path / "train.log").write_text("")
    (tmp_path / "provenance.json").write_text("{}")
    assert not holds_run(tmp_path)  # a config error stopped it: usable
    claim_run_dir(tmp_path, resuming=False, overwrite=False, how="command")
    (tmp_path / "csv").mkdir()
    (tmp_path / "csv" / "metrics.csv").write_text("epoch\n")
    assert holds_run(tmp_path)
    with pytest.raises(RunDirError, match=r"already holds a run: continue it with resume="):
        claim_run_dir(tmp_path, resuming=False, overwrite=False, how="command")
    with pytest.raises(RunDirError, match=r"segkit.fit\(cfg, run_dir, overwrite=True\)"):
        claim_run_dir(tmp_path, resuming=False, overwrite=False, how="api")
    claim_run_dir(tmp_path, resuming=True, overwrite=False, how="command")  # continuing it
    with pytest.raises(RunDirError, match=r"contradict"):
        claim_run_dir(tmp_path, resuming=True, overwrite=True, how="command")
    claim_run_dir(tmp_path, resuming=False, overwrite=True, how="command")
    assert not tmp_path.exists()  # emptied for the new run


def test_only_a_dir_of_hydras_own_files_is_discarded(tmp_path):
    started = tmp_path / "started"
    (started / ".hydra").mkdir(parents=True)
    (started / "train.log").write_text("")
    assert discard_unstarted(started) and not started.exists()
    kept = tmp_path / "kept"
    (kept / ".hydra").mkdir(parents=True)
    (kept / "provenance.json").write_text("{}")
    assert not discard_unstarted(kept) and kept.is_dir()
