"""Data loading options through `python -m segkit.train`: the labeled split is recorded in the
run dir, a bad file is skipped and counted, and a split too small for a batch is one line."""

from __future__ import annotations

import json

from tests.integration.test_train_cli import run_train
from tests.unit.test_folder import PALETTE, write_folder

FOLDER = [
    "data=folder",
    "data.num_classes=3",
    "data.class_names=[bg,road,car]",
    f"data.palette={PALETTE}",
    "data.crop_size=[32,32]",
    "data.batch_size=2",
    "data.num_workers=0",
    "model.net.encoder_weights=null",
    "trainer.max_epochs=1",
    "trainer.num_sanity_val_steps=0",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "test=false",
]


def test_semi_supervised_split_is_recorded_and_bad_files_are_skipped(tmp_path):
    names = [f"img{i}" for i in range(8)]
    write_folder(tmp_path / "data", names, subfolder="train")
    write_folder(tmp_path / "data", ["v0", "v1"], subfolder="val")
    (tmp_path / "data" / "images" / "train" / "img3.jpg").write_bytes(b"\xff\xd8 truncated")
    run_dir = tmp_path / "run"
    proc = run_train(
        *FOLDER,
        f"data.root={tmp_path / 'data'}",
        "data.labeled_fraction=0.5",
        "data.on_bad_sample=skip",
        f"hydra.run.dir={run_dir}",
    )
    record = json.loads((run_dir / "labeled_split.json").read_text())
    assert len(record["labeled"]) == 4 and len(record["unlabeled"]) == 4
    assert sorted(record["labeled"] + record["unlabeled"]) == names
    assert "train epoch 0: skipped 1 bad samples" in proc.stdout
    assert "img3.jpg" in proc.stderr  # the warning names the file


def test_labeled_part_smaller_than_a_batch_is_a_config_error(tmp_path):
    write_folder(tmp_path, ["a", "b", "c", "d"], subfolder="train")
    write_folder(tmp_path, ["v"], subfolder="val")
    proc = run_train(*FOLDER, f"data.root={tmp_path}", "data.labeled_fraction=0.25", check=False)
    assert proc.returncode == 2
    assert (
        "segkit: config error: the labeled/unlabeled split: labeled_fraction=0.25 of 4"
        in proc.stderr
    )
