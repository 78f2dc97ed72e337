"""What file-based semantic data modules share: one dataset per split, built once, and the
loaders (shuffled, dropping the last partial batch, for training only)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
from torch.utils.data import DataLoader, Dataset


class SplitsDataModule(L.LightningDataModule):
    """Train/val loaders over ``build_dataset(split)``, which subclasses implement.

    ``has_labeled_test`` tells `segkit.train` whether a ``test`` split with labels exists.

    Args:
        batch_size, val_batch_size: training and validation batch sizes.
        num_workers, pin_memory: loader settings (``pin_memory`` only helps on CUDA).
        train_transform, val_transform: albumentations pipelines, see `transform`.
    """

    has_labeled_test = False

    def __init__(
        self,
        batch_size: int,
        val_batch_size: int,
        num_workers: int,
        pin_memory: bool,
        train_transform: Callable[..., dict[str, Any]] | None,
        val_transform: Callable[..., dict[str, Any]] | None,
    ) -> None:
        super().__init__()
        self.batch_size, self.val_batch_size = batch_size, val_batch_size
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.train_transform, self.val_transform = train_transform, val_transform
        self._datasets: dict[str, Dataset] = {}

    def transform(self, split: str) -> Callable[..., dict[str, Any]] | None:
        """The pipeline of `split`: the training one for "train", the validation one otherwise."""
        return self.train_transform if split == "train" else self.val_transform

    def build_dataset(self, split: str) -> Dataset:
        raise NotImplementedError

    def dataset(self, split: str) -> Dataset:
        """The split's dataset, built once (a bad root or missing file fails here)."""
        if split not in self._datasets:
            self._datasets[split] = self.build_dataset(split)
        return self._datasets[split]

    def setup(self, stage: str) -> None:
        # Built here so a bad root fails before the first epoch, not in a worker.
        for split in ("train", "val") if stage == "fit" else ("val",):
            self.dataset(split)

    def _loader(self, split: str, batch_size: int) -> DataLoader:
        train = split == "train"
        return DataLoader(
            self.dataset(split),
            batch_size=batch_size,
            shuffle=train,
            drop_last=train,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=self.pin_memory,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.val_batch_size)
