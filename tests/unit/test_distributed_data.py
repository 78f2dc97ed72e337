"""Data under DDP: every evaluation sample seen exactly once across ranks, augmentation streams
that differ by rank, and a labeled split that does not depend on the rank."""

from __future__ import annotations

from types import SimpleNamespace

import albumentations as A
import numpy as np
import pytest
import torch

from segkit.data import transforms
from segkit.data.synthetic import SyntheticDataModule


def shares(dm: SyntheticDataModule, world_size: int, loader: str) -> list[list[str]]:
    names = []
    for rank in range(world_size):
        dm.trainer = SimpleNamespace(world_size=world_size, global_rank=rank)
        names.append([n for batch in getattr(dm, loader)() for n in batch["name"]])
    return names


@pytest.mark.parametrize("loader", ["val_dataloader", "test_dataloader"])
def test_evaluation_shares_cover_every_sample_once(loader):
    dm = SyntheticDataModule(
        image_size=32, train_size=4, val_size=5, test_size=3, batch_size=2, pin_memory=False
    )
    everything = shares(dm, 1, loader)[0]
    two = shares(dm, 2, loader)
    assert sorted(two[0] + two[1]) == sorted(everything)  # no sample repeated to pad
    assert abs(len(two[0]) - len(two[1])) == 1


def test_evaluation_split_smaller_than_the_world_is_refused():
    dm = SyntheticDataModule(image_size=32, train_size=4, val_size=1, pin_memory=False)
    dm.trainer = SimpleNamespace(world_size=2, global_rank=0)
    with pytest.raises(ValueError, match="evaluation split of 1 samples cannot be shared by 2"):
        dm.val_dataloader()


def crops(rank: int, monkeypatch) -> list[np.ndarray]:
    monkeypatch.setattr(transforms, "_distributed_rank", lambda: rank)
    pipeline = transforms.WorkerSeededTransform(A.Compose([A.RandomCrop(8, 8)]))
    image = np.arange(64 * 64 * 3, dtype=np.uint8).reshape(64, 64, 3)
    torch.manual_seed(0)  # the training seed, equal on every rank
    return [pipeline(image=image)["image"] for _ in range(4)]


def test_ranks_draw_different_augmentations_and_rank_zero_keeps_its_stream(monkeypatch):
    rank0, rank1, again0 = (crops(r, monkeypatch) for r in (0, 1, 0))
    assert all(np.array_equal(a, b) for a, b in zip(rank0, again0, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(rank0, rank1, strict=True))
    assert transforms.augmentation_seed(123, 0) == 123


def test_labeled_split_is_the_same_on_every_rank():
    dm = SyntheticDataModule(image_size=32, train_size=16, labeled_fraction=0.25, batch_size=2)
    before = [s.indices for s in dm.labeled_split()]
    dm.trainer = SimpleNamespace(world_size=2, global_rank=1)
    assert [s.indices for s in dm.labeled_split()] == before
