"""Loading options every data module has: labeled_fraction, on_bad_sample, pin_memory, and a
clear error for an empty split."""

from __future__ import annotations

import json

import pytest
import torch

from segkit.callbacks.bad_samples import BadSampleReport
from segkit.data.bad_samples import BadSampleError
from segkit.data.labeled_split import labeled_indices
from segkit.data.synthetic import SyntheticDataModule
from tests.unit.test_folder import module, write_folder


def synthetic(**kwargs):
    args = {"image_size": 32, "train_size": 20, "val_size": 4, "test_size": 4, "batch_size": 4}
    return SyntheticDataModule(**{**args, **kwargs})


def test_labeled_indices_are_a_seeded_disjoint_split():
    labeled, unlabeled = labeled_indices(100, 0.125, seed=3)
    assert len(labeled) == 12 and len(unlabeled) == 88  # round(12.5) == 12
    assert sorted(labeled + unlabeled) == list(range(100))
    torch.manual_seed(123)  # the training seed does not move the split
    assert labeled_indices(100, 0.125, seed=3) == (labeled, unlabeled)
    assert labeled_indices(100, 0.125, seed=4)[0] != labeled
    with pytest.raises(ValueError, match="labeled_fraction=0"):
        labeled_indices(100, 0.0, seed=0)


def test_partly_labeled_training_set_gives_labeled_and_unlabeled_loaders(tmp_path):
    dm = synthetic(labeled_fraction=0.25)
    dm.setup("fit")
    loaders = dm.train_dataloader()
    assert set(loaders) == {"labeled", "unlabeled"}
    labeled = next(iter(loaders["labeled"]))
    unlabeled = next(iter(loaders["unlabeled"]))
    assert labeled["mask"].shape == (4, 32, 32)
    assert set(unlabeled) == {"image", "name"} and unlabeled["image"].shape == (4, 3, 32, 32)
    assert len(loaders["labeled"].dataset) == 5 and len(loaders["unlabeled"].dataset) == 15

    dm.write_labeled_split(tmp_path)
    record = json.loads((tmp_path / "labeled_split.json").read_text())
    assert record["labeled_fraction"] == 0.25 and len(record["labeled"]) == 5
    assert not set(record["labeled"]) & set(record["unlabeled"])
    names = {dm.dataset("train")[i]["name"] for i in loaders["labeled"].dataset.indices}
    assert names == set(record["labeled"])


def test_labeled_part_smaller_than_a_batch_is_refused():
    dm = synthetic(labeled_fraction=0.1)  # 2 labeled of 20, batch 4
    with pytest.raises(ValueError, match="2 labeled and 18 unlabeled; expected at least 4"):
        dm.train_dataloader()


def test_bad_sample_raises_by_default_and_names_the_file(tmp_path):
    write_folder(tmp_path, ["a", "b", "c", "d", "e"], subfolder="train")
    write_folder(tmp_path, ["v"], subfolder="val")
    (tmp_path / "images" / "train" / "b.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    dm = module(tmp_path)
    with pytest.raises(BadSampleError, match=r"b\.jpg.*on_bad_sample=skip skips such files"):
        [dm.dataset("train")[i] for i in range(5)]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_skip_serves_the_next_sample_warns_and_counts(tmp_path, num_workers):
    write_folder(tmp_path, ["a", "b", "c", "d", "e"], subfolder="train")
    write_folder(tmp_path, ["v"], subfolder="val")
    (tmp_path / "images" / "train" / "b.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    dm = module(tmp_path, on_bad_sample="skip", batch_size=5, num_workers=num_workers)
    dm.setup("fit")
    if num_workers == 0:
        with pytest.warns(UserWarning, match=r"skipped bad sample: .*b\.jpg"):
            batch = next(iter(dm.train_dataloader()))
    else:
        batch = next(iter(dm.train_dataloader()))  # workers warn on their own stderr
    assert batch["image"].shape[0] == 5  # the batch keeps its size
    assert "b" not in batch["name"] and sorted(set(batch["name"])) == ["a", "c", "d", "e"]
    assert dm.take_bad_sample_count("train") == 1  # counted across worker processes
    assert dm.take_bad_sample_count("train") == 0  # and reset when read


def test_report_prints_the_epoch_count(tmp_path, capsys):
    write_folder(tmp_path, ["a", "b", "c"], subfolder="train")
    write_folder(tmp_path, ["v"], subfolder="val")
    (tmp_path / "masks" / "train" / "a.png").write_bytes(b"truncated")
    dm = module(tmp_path, on_bad_sample="skip", batch_size=3)
    dm.setup("fit")
    with pytest.warns(UserWarning, match=r"a\.png"):
        next(iter(dm.train_dataloader()))

    class Trainer:
        datamodule, current_epoch, world_size, global_rank = dm, 0, 1, 0

    BadSampleReport().on_train_epoch_end(Trainer(), None)
    assert "train epoch 0: skipped 1 bad samples" in capsys.readouterr().out


def test_on_bad_sample_and_pin_memory_values_are_checked(tmp_path):
    with pytest.raises(ValueError, match="on_bad_sample='ignore' is invalid"):
        synthetic(on_bad_sample="ignore")
    with pytest.raises(ValueError, match="pin_memory='yes' is invalid"):
        synthetic(pin_memory="yes")
    dm = synthetic(pin_memory="auto")
    dm.setup("fit")
    assert dm.train_dataloader().pin_memory is torch.cuda.is_available()
    assert synthetic(pin_memory=False).val_dataloader().pin_memory is False


def test_empty_split_is_a_clear_error(tmp_path):
    write_folder(tmp_path, ["a", "b"])
    (tmp_path / "train.txt").write_text("a\nb\n")
    (tmp_path / "val.txt").write_text("\n")
    with pytest.raises(ValueError, match="the val split of FolderDataModule is empty"):
        module(tmp_path, split="lists").dataset("val")


def test_overfitting_serves_the_same_first_batches_every_epoch():
    """debug=overfit (Lightning's overfit_batches): the training order is sequential, not the
    epoch-seeded shuffle, so the same batches come back every epoch."""
    from types import SimpleNamespace

    from torch.utils.data import SequentialSampler

    dm = synthetic(train_size=8, batch_size=2, pin_memory=False)
    dm.trainer = SimpleNamespace(overfit_batches=3, world_size=1)
    loader = dm.train_dataloader()
    assert isinstance(loader.sampler, SequentialSampler)
    assert [s["name"] for s in loader.dataset][:2] == next(iter(loader))["name"]
