"""What the training masks of a dataset say about its config, found before training (and by
`segkit check`): black-and-white masks read as class indices, and classes no pixel belongs to.

Black-and-white 0/255 PNGs are the most common custom masks. Read as class indices
(``mask_format: index``), 255 is the ignore index: every foreground pixel is ignored and the
model learns background only, without an error. `binary_trap` recognises them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def class_pixels(
    masks: Iterable[np.ndarray], num_classes: int, ignore_index: int
) -> tuple[np.ndarray, int]:
    """(pixels per class int64 [num_classes], ignored pixels) over decoded class masks."""
    counts = np.zeros(num_classes, dtype=np.int64)
    ignored = 0
    for mask in masks:
        mask = np.asarray(mask)
        labels = mask[mask != ignore_index]
        counts += np.bincount(labels.ravel().astype(np.int64), minlength=num_classes)[:num_classes]
        ignored += int(mask.size - labels.size)
    return counts, ignored


def binary_trap(counts: np.ndarray, ignored: int, mask_format: str | None) -> str | None:
    """The one-line refusal of masks holding only 0 and 255 read as class indices (every
    foreground pixel would be ignored), else None."""
    if mask_format != "index" or not ignored or not counts[0] or counts[1:].any():
        return None
    return (
        "the training masks hold only 0 and 255: with data.mask_format=index, 255 is the "
        "ignore index, so no pixel would be foreground; for black-and-white masks set "
        "data.mask_format=binary (0 background, 255 or 1 foreground)"
    )


def empty_classes(counts: np.ndarray, class_names: Sequence[str]) -> list[str]:
    """The names of the classes with no pixel."""
    return [name for name, count in zip(class_names, counts, strict=True) if count == 0]
