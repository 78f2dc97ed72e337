"""What file-based data modules share: one dataset per split, built once, and the loaders
(shuffled, dropping the last partial batch, for training only), with the options every
dataset has: ``on_bad_sample``, ``labeled_fraction`` and ``pin_memory: auto``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, SequentialSampler

from segkit.data.bad_samples import RaiseBadSamples, SkipBadSamples, check_on_bad_sample
from segkit.data.epoch_order import DistributedEpochShuffle, EpochShuffle
from segkit.data.image_reader import ImageReader
from segkit.data.instances import instance_collate
from segkit.data.labeled_split import (
    Unlabeled,
    check_labeled_fraction,
    split_datasets,
    write_split_record,
)
from segkit.data.unlabeled_views import with_strong_views


def check_fixed_facts(
    dataset: str, classes: int, num_classes: int, ignore_index: int, in_channels: int
) -> None:
    """ValueError unless the configured facts are those of `dataset`, which has `classes`
    classes, ignore index 255 and RGB images (Cityscapes, VOC, GTA5, SYNTHIA)."""
    if (num_classes, ignore_index, in_channels) != (classes, 255, 3):
        raise ValueError(
            f"{dataset} has {classes} classes, ignore index 255 and RGB images: got "
            f"num_classes={num_classes}, ignore_index={ignore_index}, in_channels={in_channels}"
        )


class SplitsDataModule(L.LightningDataModule):
    """Train/val loaders over ``build_dataset(split)``, which subclasses implement.

    ``has_labeled_test`` tells `segkit.train` whether a ``test`` split with labels exists;
    ``collate_fn`` is None for semantic samples (stacked) and `instance_collate` for
    instance samples (lists).

    Args:
        batch_size, val_batch_size: training and validation batch sizes.
        num_workers: loader processes per device.
        persistent_workers: keep worker processes between epochs (when ``num_workers > 0``).
        drop_last: drop the last partial training batch (unless the set is smaller than one).
        task: the kind of samples, one of ``tasks`` (instance models set it to "instance").
        pin_memory: true/false, or "auto": pinned only when training on CUDA.
        train_transform, val_transform: albumentations pipelines, see `transform`.
        on_bad_sample: "error" raises on a file that cannot be read; "skip" warns, serves
            the next sample instead and counts (see `segkit.data.bad_samples`).
        labeled_fraction, labeled_seed: below 1, only a seeded fraction of the training set
            keeps its labels and ``train_dataloader`` returns ``{"labeled", "unlabeled"}``
            loaders, plus ``"unlabeled_mix"`` (the same unlabeled samples in another order:
            CutMix partners) with ``strong_views`` (see `segkit.data.labeled_split`).
        labeled_list: a file naming the labeled training samples, one per line (a published
            split such as UniMatch's; `segkit.data.labeled_split.listed_indices`): the rest of
            the training set is unlabeled. Replaces ``labeled_fraction``.
        strong_views, strong_transform: with ``strong_views`` > 0, unlabeled samples carry
            that many strong views of their weak (training-pipeline) image, each a draw of the
            photometric ``strong_transform`` (`segkit.data.unlabeled_views`).
        unlabeled_true_masks: unlabeled samples keep their hidden mask as ``"true_mask"``, for
            monitoring pseudo-labels only (``train/pseudo_acc``).
        exif_orientation, bit_depth: how image files are decoded (`image_reader`,
            `segkit.data.image_reader.ImageReader`).
    """

    has_labeled_test = False
    #: The sample kinds the dataset can give ("semantic", "instance"), first = default.
    tasks: tuple[str, ...] = ("semantic",)

    def __init__(
        self,
        batch_size: int = 8,
        val_batch_size: int = 1,
        num_workers: int = 4,
        pin_memory: bool | str = "auto",
        train_transform: Callable[..., dict[str, Any]] | None = None,
        val_transform: Callable[..., dict[str, Any]] | None = None,
        on_bad_sample: str = "error",
        labeled_fraction: float = 1.0,
        labeled_seed: int = 0,
        persistent_workers: bool = True,
        drop_last: bool = True,
        task: str | None = None,
        exif_orientation: bool = True,
        bit_depth: int | None = None,
        labeled_list: str | None = None,
        strong_views: int = 0,
        strong_transform: Callable[..., dict[str, Any]] | None = None,
        unlabeled_true_masks: bool = False,
    ) -> None:
        super().__init__()
        self.task = task or self.tasks[0]
        if self.task not in self.tasks:
            raise ValueError(
                f"task={task!r}: {type(self).__name__} gives {' or '.join(self.tasks)} samples"
            )
        check_on_bad_sample(on_bad_sample)
        check_labeled_fraction(labeled_fraction)
        if labeled_list is not None and labeled_fraction < 1.0:
            raise ValueError(
                f"data.labeled_list={labeled_list} and data.labeled_fraction={labeled_fraction} "
                "both choose the labeled images: set one of them"
            )
        if strong_views < 0 or (strong_views > 0 and strong_transform is None):
            raise ValueError(
                f"data.strong_views={strong_views} is invalid: expected 0, or a positive count "
                "with a data.strong_transform pipeline"
            )
        if pin_memory not in (True, False, "auto"):
            raise ValueError(f"pin_memory={pin_memory!r} is invalid: expected true, false or auto")
        self.batch_size, self.val_batch_size = batch_size, val_batch_size
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.train_transform, self.val_transform = train_transform, val_transform
        self.on_bad_sample = on_bad_sample
        self.labeled_fraction, self.labeled_seed = labeled_fraction, labeled_seed
        self.labeled_list = str(labeled_list) if labeled_list is not None else None
        self.strong_views, self.strong_transform = strong_views, strong_transform
        self.unlabeled_true_masks = unlabeled_true_masks
        self.persistent_workers, self.drop_last = persistent_workers, drop_last
        self.collate_fn: Callable | None = instance_collate if self.task == "instance" else None
        self._datasets: dict[str, Dataset] = {}
        self.exif_orientation, self.bit_depth = exif_orientation, bit_depth
        self.image_reader(3)  # invalid options fail when the module is built

    def image_reader(self, in_channels: int) -> ImageReader:
        """The reader of this dataset's image files (every split, `segkit.data.check` too)."""
        return ImageReader(in_channels, self.exif_orientation, self.bit_depth)

    def transform(self, split: str) -> Callable[..., dict[str, Any]] | None:
        """The pipeline of `split`: the training one for "train", the validation one otherwise."""
        return self.train_transform if split == "train" else self.val_transform

    def build_dataset(self, split: str) -> Dataset:
        raise NotImplementedError

    def dataset(self, split: str) -> Dataset:
        """The split's dataset, built once (a bad root or missing file fails here)."""
        if split not in self._datasets:
            dataset = self.build_dataset(split)
            if len(dataset) == 0:
                raise ValueError(f"the {split} split of {type(self).__name__} is empty")
            wrapper = SkipBadSamples if self.on_bad_sample == "skip" else RaiseBadSamples
            dataset = wrapper(dataset)
            self._datasets[split] = dataset
        return self._datasets[split]

    def take_bad_sample_count(self, split: str) -> int:
        """Samples of `split` skipped since the last call (0 unless ``on_bad_sample=skip``)."""
        dataset = self._datasets.get(split)
        return dataset.take_count() if isinstance(dataset, SkipBadSamples) else 0

    @property
    def semi_supervised(self) -> bool:
        """Whether part of the training set is unlabeled (``labeled_fraction`` < 1 or a
        ``labeled_list``)."""
        return self.labeled_fraction < 1.0 or self.labeled_list is not None

    def labeled_split(self) -> tuple[Dataset, Dataset]:
        """(labeled, unlabeled) parts of the training set (`semi_supervised`)."""
        return split_datasets(
            self.dataset("train"),
            self.labeled_fraction,
            self.labeled_seed,
            self.batch_size,
            labeled_list=self.labeled_list,
            true_masks=self.unlabeled_true_masks,
            unlabeled_source=self._unlabeled_source(),
        )

    def _unlabeled_source(self) -> Dataset:
        """The training set as unlabeled samples are read: with ``strong_views`` strong views."""
        train = self.dataset("train")
        if not self.strong_views:
            return train
        return with_strong_views(
            train, self.transform("train"), self.strong_transform, self.strong_views
        )

    def unlabeled_train(self) -> Dataset:
        """The whole training set as unlabeled samples (the target domain of domain
        adaptation, `segkit.data.domain_pair`): ``{"image", "name"}``, with ``"strong"``
        views and ``"true_mask"`` as this module's ``strong_views`` and
        ``unlabeled_true_masks`` say."""
        source = self._unlabeled_source()
        return Unlabeled(source, list(range(len(source))), self.unlabeled_true_masks)

    def write_labeled_split(self, run_dir: Path | None) -> None:
        """Record which training samples are labeled in ``<run_dir>/labeled_split.json``
        (``run_dir`` None: only check the split, ValueError if it cannot be made)."""
        if self.semi_supervised:
            labeled, unlabeled = self.labeled_split()
            if run_dir is None:
                return
            write_split_record(
                run_dir / "labeled_split.json",
                labeled,
                unlabeled,
                self.labeled_fraction,
                self.labeled_seed,
                self.labeled_list,
            )

    def setup(self, stage: str) -> None:
        # Built here so a bad root fails before the first epoch, not in a worker.
        splits = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",)}
        for split in splits.get(stage, ()):
            self.dataset(split)

    def _pin_memory(self) -> bool:
        if self.pin_memory != "auto":
            return bool(self.pin_memory)
        trainer = self.trainer
        if trainer is not None:
            return trainer.strategy.root_device.type == "cuda"
        return torch.cuda.is_available()

    def _loader(
        self, dataset: Dataset, batch_size: int, train: bool, stream: int = 0
    ) -> DataLoader:
        sampler = self._training_sampler(dataset, batch_size, stream) if train else None
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=train and sampler is None,
            sampler=sampler if train else self._evaluation_sampler(dataset),
            # A training set smaller than a batch still trains (one short batch per epoch).
            drop_last=self.drop_last and train and len(dataset) >= batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.persistent_workers and self.num_workers > 0,
            pin_memory=self._pin_memory(),
            collate_fn=self.collate_fn,
        )

    def _training_sampler(
        self, dataset: Dataset, batch_size: int, stream: int = 0
    ) -> Sampler | None:
        """The order follows the seed, the epoch and `stream` (another order of the same
        samples), so resumed runs see the same batches: `EpochShuffle` in one process,
        `DistributedEpochShuffle` (each rank's share) under DDP."""
        trainer = self.trainer
        if trainer is not None and trainer.overfit_batches:
            return SequentialSampler(dataset)  # the same first batches every epoch
        if trainer is not None and trainer.world_size > 1:
            return DistributedEpochShuffle(
                dataset, trainer.world_size, trainer.global_rank, batch_size, stream
            )
        return EpochShuffle(len(dataset), batch_size=batch_size, stream=stream)

    def _evaluation_sampler(self, dataset: Dataset) -> Sampler | None:
        """Under DDP, each rank's share of an evaluation split, every sample exactly once.

        Lightning's default DistributedSampler pads the shares to equal length by repeating
        samples, which metrics would count twice; shares here differ by at most one sample
        (safe: evaluation has no per-batch collective, the metrics sync once per epoch)."""
        trainer = self.trainer
        if trainer is None or trainer.world_size < 2:
            return None  # one process: Lightning leaves the loader as it is
        from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler

        if len(dataset) < trainer.world_size:
            raise ValueError(
                f"{type(self).__name__}: an evaluation split of {len(dataset)} samples cannot "
                f"be shared by {trainer.world_size} processes (each needs at least one)"
            )
        return UnrepeatedDistributedSampler(
            dataset, num_replicas=trainer.world_size, rank=trainer.global_rank, shuffle=False
        )

    def train_dataloader(self) -> DataLoader | dict[str, DataLoader]:
        if self.semi_supervised:
            labeled, unlabeled = self.labeled_split()
            loaders = {
                "labeled": self._loader(labeled, self.batch_size, train=True),
                "unlabeled": self._loader(unlabeled, self.batch_size, train=True),
            }
            if self.strong_views:  # CutMix partners of the consistency methods (UniMatch)
                loaders["unlabeled_mix"] = self._loader(
                    unlabeled, self.batch_size, train=True, stream=1
                )
            return loaders
        return self._loader(self.dataset("train"), self.batch_size, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.dataset("val"), self.val_batch_size, train=False)
