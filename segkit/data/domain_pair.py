"""Domain adaptation data: a labeled source domain and an unlabeled target domain in one
datamodule (``model=adapt``, docs/domain_adaptation.md).

Training batches are ``{"source": semantic batch, "target": unlabeled batch}`` (the target's
whole training set, its labels never returned; `SplitsDataModule.unlabeled_train`), iterated
together by Lightning (the shorter loader cycles). Validation is the target's val split first
(``val/...``, what ``monitor`` reads) and the source's second (logged as ``val_source/...``);
test is the target's. The two label spaces must agree, or a ``label_mapping`` must say how
source classes become target classes; otherwise the datamodule refuses to be built. A
``target_label_mapping`` evaluates the target in a smaller label space, the pair's (SYNTHIA ->
Cityscapes: Cityscapes' 19 classes scored as the 16 SYNTHIA has).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from segkit.data.base import SplitsDataModule
from segkit.data.label_spaces import check_pair_label_spaces


class MappedLabels(Dataset):
    """Samples of `dataset` with the classes of their ``"mask"`` (semantic samples) or
    ``"true_mask"`` (unlabeled ones that keep it) mapped by a lookup table (int64 [256]:
    class -> new class)."""

    def __init__(self, dataset: Dataset, table: torch.Tensor) -> None:
        self.dataset, self.table = dataset, table

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = dict(self.dataset[index])
        for key in ("mask", "true_mask"):
            if key in sample:
                sample[key] = self.table[sample[key]]
        return sample


def mapping_table(mapping: Mapping[int, int] | None, ignore_index: int) -> torch.Tensor | None:
    """int64 [256]: class -> ``mapping[class]``; unmapped values (the ignore index) become
    `ignore_index`. None for no mapping."""
    if mapping is None:
        return None
    table = torch.full((256,), ignore_index, dtype=torch.long)
    for old, new in mapping.items():
        table[int(old)] = int(new)
    return table


class DomainPairDataModule(L.LightningDataModule):
    """A labeled source and an unlabeled target datamodule (any `SplitsDataModule`).

    Args:
        source: the labeled domain (its training pipeline and batch size are used).
        target: the unlabeled domain; its ``strong_views``/``strong_transform`` make strong
            views of target images (DACS), ``unlabeled_true_masks`` keeps their hidden masks
            for monitoring only (``train/pseudo_acc``).
        batch_size: the batch size of both domains (None: each module's own).
        num_workers: loader processes of both domains (None: each module's own), so that
            ``data.num_workers=0`` (and the debug presets) reach a pair's loaders.
        crop_size: [height, width] of both domains' training crops, which their pipelines
            read by interpolation (``${data.crop_size}``); None where they have none.
        num_classes, class_names, ignore_index, palette, in_channels: the pair's label space
            (the target's, unless ``target_label_mapping``) and image channels (every data
            config exposes them; checked against the modules' own where they have them).
        label_mapping: source class -> pair class (or ignore_index), when the two datasets
            name their classes differently; None: they must be the same classes.
        source_classes: the source's class names (default: the source module's
            ``class_names``).
        target_label_mapping: target class -> pair class (or ignore_index), to score the
            target in the pair's smaller label space; None: the target's classes are the
            pair's.
    """

    def __init__(
        self,
        source: SplitsDataModule,
        target: SplitsDataModule,
        num_classes: int,
        class_names: Sequence[str],
        ignore_index: int = 255,
        palette: Sequence[Sequence[int]] | None = None,
        in_channels: int = 3,
        batch_size: int | None = None,
        num_workers: int | None = None,
        crop_size: Sequence[int] | None = None,
        label_mapping: Mapping[int, int] | None = None,
        source_classes: Sequence[str] | None = None,
        target_label_mapping: Mapping[int, int] | None = None,
    ) -> None:
        super().__init__()
        # An empty mapping is no mapping, as in the config checks.
        label_mapping, target_label_mapping = label_mapping or None, target_label_mapping or None
        self.source, self.target = source, target
        if batch_size is not None:
            source.batch_size = target.batch_size = batch_size
        if num_workers is not None:
            source.num_workers = target.num_workers = num_workers
        self.batch_size, self.in_channels = batch_size, in_channels
        self.crop_size = list(crop_size) if crop_size is not None else None
        for name, module in (("source", source), ("target", target)):
            channels = getattr(module, "in_channels", in_channels)
            if channels != in_channels:
                raise ValueError(
                    f"data.{name} gives {channels}-channel images but data.in_channels="
                    f"{in_channels}: both domains must have the network's input channels"
                )
        self.num_classes, self.class_names = num_classes, list(class_names)
        self.ignore_index, self.palette = ignore_index, palette
        if len(self.class_names) != num_classes:
            raise ValueError(
                f"data.class_names names {len(self.class_names)} classes, data.num_classes is "
                f"{num_classes}"
            )
        target_names = list(getattr(target, "class_names", None) or class_names)
        if target_label_mapping is None and target_names != self.class_names:
            raise ValueError(
                f"data.class_names {self.class_names} must be the target's classes "
                f"{target_names}, or data.target_label_mapping must map the target's to them"
            )
        source_names = source_classes or getattr(source, "class_names", None)
        if source_names is None:
            raise ValueError("data.source_classes: name the source's classes")
        check_pair_label_spaces(
            source_names,
            target_names,
            self.class_names,
            label_mapping,
            target_label_mapping,
            ignore_index,
        )
        self.source_table = mapping_table(label_mapping, ignore_index)
        self.target_table = mapping_table(target_label_mapping, ignore_index)

    @property
    def has_labeled_test(self) -> bool:
        return getattr(self.target, "has_labeled_test", False)

    @property
    def task(self) -> str:
        return "semantic"

    def dataset(self, split: str) -> Dataset:
        """The target's split in the pair's label space (what validation scores and pictures
        show)."""
        return _mapped(self.target.dataset(split), self.target_table)

    def take_bad_sample_count(self, split: str) -> int:
        return sum(m.take_bad_sample_count(split) for m in (self.source, self.target))

    def setup(self, stage: str) -> None:
        for module in (self.source, self.target):
            module.trainer = self.trainer  # their samplers shard by the trainer's ranks
        # Test is the target's alone (a source such as GTA5 has no test split).
        for module in (self.target,) if stage == "test" else (self.source, self.target):
            module.setup(stage)

    def source_train(self) -> Dataset:
        """The source's labeled training samples, classes mapped to the pair's."""
        return _mapped(self.source.dataset("train"), self.source_table)

    def train_dataloader(self) -> dict[str, DataLoader]:
        target = _mapped(self.target.unlabeled_train(), self.target_table)  # its true masks
        return {
            "source": self.source._loader(self.source_train(), self.source.batch_size, True),
            "target": self.target._loader(target, self.target.batch_size, True),
        }

    def val_dataloader(self) -> list[DataLoader]:
        """[target val, source val]: the task logs the second as ``val_source/...``."""
        source_val = _mapped(self.source.dataset("val"), self.source_table)
        return [
            self._in_pair_classes(self.target.val_dataloader()),
            self.source._loader(source_val, self.source.val_batch_size, train=False),
        ]

    def test_dataloader(self) -> DataLoader:
        return self._in_pair_classes(self.target.test_dataloader())

    def _in_pair_classes(self, loader: DataLoader) -> DataLoader:
        """A target evaluation loader, its masks mapped by ``target_label_mapping``."""
        if self.target_table is None:
            return loader
        mapped = MappedLabels(loader.dataset, self.target_table)
        return self.target._loader(mapped, loader.batch_size, train=False)


def _mapped(dataset: Dataset, table: torch.Tensor | None) -> Dataset:
    return dataset if table is None else MappedLabels(dataset, table)
