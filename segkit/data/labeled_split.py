"""Semi-supervised training data: a deterministic labeled/unlabeled split of a training set.

A data module with ``labeled_fraction < 1`` keeps the labels of a seeded ``labeled_fraction``
of its training samples and hands out the rest as unlabeled samples ``{"image", "name"}``
(their masks are never returned). ``train_dataloader`` then returns
``{"labeled": loader, "unlabeled": loader}``, which Lightning iterates together (the shorter
one cycles). The split depends only on the dataset's length and ``labeled_seed``, never on the
training seed, so runs with different seeds compare on the same labeled images.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset, Subset


def check_labeled_fraction(fraction: float) -> None:
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"labeled_fraction={fraction} is invalid: expected 0 < fraction <= 1")


def labeled_indices(length: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(labeled, unlabeled) sorted sample indices: a seeded ``round(length * fraction)`` of
    ``range(length)`` (at least one) is labeled, the rest unlabeled."""
    check_labeled_fraction(fraction)
    order = list(range(length))
    random.Random(seed).shuffle(order)
    num_labeled = min(length, max(1, round(length * fraction)))
    return sorted(order[:num_labeled]), sorted(order[num_labeled:])


class Unlabeled(Dataset):
    """The samples of `dataset` at `indices` without their labels: ``{"image", "name"}``."""

    def __init__(self, dataset: Dataset, indices: list[int]) -> None:
        self.dataset, self.indices = dataset, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self.dataset[self.indices[index]]
        return {"image": sample["image"], "name": sample["name"]}


def split_datasets(
    dataset: Dataset, fraction: float, seed: int, min_labeled: int = 1
) -> tuple[Dataset, Dataset]:
    """(labeled subset, `Unlabeled` rest) of `dataset`; refuses splits whose labeled part is
    smaller than `min_labeled` (the training batch size) or whose unlabeled part is empty."""
    labeled, unlabeled = labeled_indices(len(dataset), fraction, seed)
    if len(labeled) < min_labeled or not unlabeled:
        raise ValueError(
            f"labeled_fraction={fraction} of {len(dataset)} training samples gives "
            f"{len(labeled)} labeled and {len(unlabeled)} unlabeled; expected at least "
            f"{min_labeled} (one batch) labeled and one unlabeled"
        )
    return Subset(dataset, labeled), Unlabeled(dataset, unlabeled)


def write_split_record(
    path: Path, labeled: Dataset, unlabeled: Unlabeled, fraction: float, seed: int
) -> None:
    """Save which training samples were labeled (by name) as JSON, for the run dir."""
    base = unlabeled.dataset
    names = _sample_names(base)
    record = {
        "labeled_fraction": fraction,
        "labeled_seed": seed,
        "labeled": [names(i) for i in labeled.indices],
        "unlabeled": [names(i) for i in unlabeled.indices],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")


def _sample_names(dataset: Dataset):
    """index -> sample name, without decoding images when the dataset lists its names."""
    listed = getattr(dataset, "names", None)
    if listed is not None:
        return lambda i: listed[i]
    sample_name = getattr(dataset, "sample_name", None)
    if sample_name is not None:
        return sample_name
    return lambda i: dataset[i]["name"]
