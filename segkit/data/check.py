"""`python -m segkit.data.check data=<name> data.root=...`: read every sample of a dataset once.

Prints, per split: the sample count, a histogram of image sizes, the pixel frequency of each
class (instance data: the instance count of each class), and every problem found (missing
pairs, unreadable files, size mismatches, invalid label values), each naming its file. Exits
with status 1 when there is a problem, 2 on a bad config. Samples are read untransformed;
overrides are the same as for `segkit.train`.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from segkit.data.mask_survey import binary_trap, empty_classes


@dataclass
class SplitReport:
    """What reading one split found."""

    split: str
    samples: int = 0
    sizes: Counter = field(default_factory=Counter)  # (height, width) -> images
    class_pixels: np.ndarray | None = None  # instance data: instances per class
    ignored_pixels: int = 0
    instances: bool = False
    problems: list[str] = field(default_factory=list)


def read_raw(dataset: Any, index: int) -> tuple[tuple[int, int], np.ndarray, bool]:
    """(height, width), class mask (instance data: instance labels) of a sample, and whether
    it is an instance sample; untransformed where the dataset can."""
    if hasattr(dataset, "read"):
        image, mask = dataset.read(index)
        return image.shape[:2], np.asarray(mask), False
    sample = dataset[index]
    if "target" in sample:
        return tuple(sample["image"].shape[1:]), sample["target"]["labels"].numpy(), True
    mask = sample["mask"].numpy()
    return mask.shape, mask, False


def check_split(datamodule: Any, split: str, num_classes: int, ignore_index: int) -> SplitReport:
    report = SplitReport(split, class_pixels=np.zeros(num_classes, dtype=np.int64))
    try:
        dataset = datamodule.dataset(split)
    except (OSError, ValueError) as err:
        report.problems.append(str(err))
        return report
    for index in range(len(dataset)):
        try:
            size, mask, report.instances = read_raw(dataset, index)
        except (OSError, ValueError) as err:
            report.problems.append(str(err))
            continue
        labels = mask[mask != ignore_index]
        if labels.size and labels.max() >= num_classes:
            report.problems.append(f"sample {index}: label {int(labels.max())} >= {num_classes}")
            continue
        report.samples += 1
        report.sizes[tuple(int(s) for s in size)] += 1
        report.class_pixels += np.bincount(labels.ravel(), minlength=num_classes)
        report.ignored_pixels += int(mask.size - labels.size)
    return report


def training_problems(report: SplitReport, class_names: list[str], mask_format: str | None) -> None:
    """Add to the training split's problems: black-and-white masks read as class indices,
    and classes no training pixel belongs to (`segkit.data.mask_survey`)."""
    if report.instances or not report.samples:
        return
    trap = binary_trap(report.class_pixels, report.ignored_pixels, mask_format)
    if trap:
        report.problems.append(trap)
    empty = empty_classes(report.class_pixels, class_names)
    if empty:
        report.problems.append(
            f"no training pixel belongs to {len(empty)} of the classes: {', '.join(empty)}"
        )


def format_report(report: SplitReport, class_names: list[str]) -> str:
    lines = [f"[{report.split}] {report.samples} samples read, {len(report.problems)} problems"]
    for (h, w), count in report.sizes.most_common(5):
        lines.append(f"  size {w}x{h}: {count}")
    total = int(report.class_pixels.sum()) + report.ignored_pixels
    if report.instances:
        lines.append("  instances per class:")
        for name, count in zip(class_names, report.class_pixels, strict=True):
            lines.append(f"  {name:<20} {int(count):8d}")
    elif total:
        for name, pixels in zip(class_names, report.class_pixels, strict=True):
            lines.append(f"  {name:<20} {pixels / total:8.4%}")
        lines.append(f"  {'(ignored)':<20} {report.ignored_pixels / total:8.4%}")
    lines += [f"  PROBLEM: {p}" for p in report.problems]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf

    from segkit.run.compose import CONF_DIR
    from segkit.run.config_checks import ConfigError, check_data_config

    try:
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            cfg = compose("train", overrides=argv)
        check_data_config(cfg)
    except (HydraException, ConfigError) as err:
        print(f"segkit: config error: {err}", file=sys.stderr)
        return 2
    from hydra.utils import instantiate

    # The check reports every bad sample, whatever the training setting.
    options = {"on_bad_sample": "error"} if "on_bad_sample" in cfg.data else {}
    datamodule = instantiate(cfg.data, _convert_="all", **options)
    splits = ["train", "val"] + (["test"] if getattr(datamodule, "has_labeled_test", True) else [])
    names = list(cfg.data.class_names)
    reports = [
        check_split(datamodule, s, cfg.data.num_classes, cfg.data.ignore_index) for s in splits
    ]
    training_problems(reports[0], names, cfg.data.get("mask_format"))
    print(f"data: {OmegaConf.select(cfg, 'data._target_')}")
    for report in reports:
        print(format_report(report, names))
    problems = sum(len(r.problems) for r in reports)
    print(f"{problems} problems found" if problems else "no problem found")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
