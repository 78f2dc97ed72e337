"""Semi-supervised training data: a deterministic labeled/unlabeled split of a training set.

A data module with ``labeled_fraction < 1`` keeps the labels of a seeded ``labeled_fraction``
of its training samples and hands out the rest as unlabeled samples ``{"image", "name"}``
(their masks are never returned). ``train_dataloader`` then returns
``{"labeled": loader, "unlabeled": loader}``, which Lightning iterates together (the shorter
one cycles), plus ``"unlabeled_mix"`` when unlabeled samples carry strong views: the same
unlabeled images in another order, the CutMix partners of the consistency methods. The split
depends only on the dataset's length and ``labeled_seed``, never on the training seed, so runs
with different seeds compare on the same labeled images. A ``labeled_list`` file (a
published split, e.g. UniMatch's) names the labeled samples instead.
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
    """The samples of `dataset` at `indices` without their labels: ``{"image", "name"}``, plus
    ``"strong"`` and ``"padding"`` when the dataset makes strong views
    (`segkit.data.unlabeled_views`) and, with
    ``true_masks``, the hidden mask as ``"true_mask"``: for monitoring pseudo-labels
    (``train/pseudo_acc``) on data whose unlabeled masks are known, never for a loss."""

    def __init__(self, dataset: Dataset, indices: list[int], true_masks: bool = False) -> None:
        self.dataset, self.indices, self.true_masks = dataset, indices, true_masks

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self.dataset[self.indices[index]]
        unlabeled = {"image": sample["image"], "name": sample["name"]}
        for key in ("strong", "padding"):
            if key in sample:
                unlabeled[key] = sample[key]
        if self.true_masks:
            unlabeled["true_mask"] = sample["mask"]
        return unlabeled


def listed_indices(names: list[str], list_file: str | Path) -> tuple[list[int], list[int]]:
    """(labeled, unlabeled) indices of samples named `names`: labeled are those `list_file`
    lists, one per line. A line's first field may be a bare name or a path (the split lists
    published with UniMatch: ``JPEGImages/2007_000032.jpg ...``, ``leftImg8bit/train/aachen/
    aachen_000000_000019_leftImg8bit.png ...``): its file stem, without a Cityscapes
    ``_leftImg8bit`` suffix, is matched. Unknown names fail, naming the file and line."""
    path = Path(list_file)
    if not path.is_file():
        raise FileNotFoundError(f"data.labeled_list={path} does not exist")
    index = {name: i for i, name in enumerate(names)}
    labeled: set[int] = set()
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        token = line.split()[0]
        name = Path(token).name
        candidates = (name, Path(name).stem, Path(name).stem.removesuffix("_leftImg8bit"))
        found = next((index[c] for c in candidates if c in index), None)
        if found is None:
            raise ValueError(
                f"{path}, line {number}: {token!r} names no training sample (expected a sample "
                f"name such as {names[0]!r}, or a path ending in one)"
            )
        labeled.add(found)
    if not labeled:
        raise ValueError(f"data.labeled_list={path} lists no sample")
    return sorted(labeled), [i for i in range(len(names)) if i not in labeled]


def split_datasets(
    dataset: Dataset,
    fraction: float,
    seed: int,
    min_labeled: int = 1,
    labeled_list: str | Path | None = None,
    true_masks: bool = False,
    unlabeled_source: Dataset | None = None,
) -> tuple[Dataset, Dataset]:
    """(labeled subset, `Unlabeled` rest) of `dataset`, by `labeled_list` when given, else a
    seeded `fraction`; refuses splits whose labeled part is smaller than `min_labeled` (the
    training batch size) or whose unlabeled part is empty. `unlabeled_source` (default:
    `dataset`) is the same samples read another way (with strong views)."""
    if labeled_list is not None:
        names = _sample_names(dataset)
        labeled, unlabeled = listed_indices([names(i) for i in range(len(dataset))], labeled_list)
        described = f"data.labeled_list={labeled_list}"
    else:
        labeled, unlabeled = labeled_indices(len(dataset), fraction, seed)
        described = f"labeled_fraction={fraction}"
    if len(labeled) < min_labeled or not unlabeled:
        raise ValueError(
            f"{described} of {len(dataset)} training samples gives "
            f"{len(labeled)} labeled and {len(unlabeled)} unlabeled; expected at least "
            f"{min_labeled} (one batch) labeled and one unlabeled"
        )
    source = unlabeled_source if unlabeled_source is not None else dataset
    return Subset(dataset, labeled), Unlabeled(source, unlabeled, true_masks)


def write_split_record(
    path: Path,
    labeled: Subset,
    unlabeled: Unlabeled,
    fraction: float,
    seed: int,
    labeled_list: str | None = None,
) -> None:
    """Save which training samples were labeled (by name) as JSON, for the run dir."""
    names = _sample_names(labeled.dataset)
    record = {
        "labeled_fraction": None if labeled_list else fraction,
        "labeled_seed": None if labeled_list else seed,
        "labeled_list": labeled_list,
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
