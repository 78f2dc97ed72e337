"""``data.on_bad_sample``: what a loader does with a sample it cannot read.

"error" (default) raises the sample's error, which names the file and what was wrong.
"skip" warns with that message, counts the sample and serves the next readable one in its
place, so batches keep their size; `segkit.callbacks.bad_samples.BadSampleReport` prints the
epoch's count at its end.
"""

from __future__ import annotations

import multiprocessing
import warnings
from typing import Any

from torch.utils.data import Dataset

BAD_SAMPLE_MODES = ("error", "skip")

#: What a bad file raises while being read: unreadable/truncated images (OSError), size
#: mismatches and invalid label values (ValueError).
BAD_SAMPLE_ERRORS = (OSError, ValueError)


def check_on_bad_sample(mode: str) -> None:
    if mode not in BAD_SAMPLE_MODES:
        raise ValueError(f"on_bad_sample={mode!r} is invalid: expected one of {BAD_SAMPLE_MODES}")


class BadSampleError(ValueError):
    """A sample that cannot be read (``on_bad_sample=error``); the message names the file."""


class _Wrapped(Dataset):
    """A dataset wrapper whose dataset facts (names, images, ...) stay reachable."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str) -> Any:
        if name == "dataset":  # not set yet (unpickling in a worker): no recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)


class RaiseBadSamples(_Wrapped):
    """`dataset`, with a read error of a sample raised as `BadSampleError` (same message), so
    `segkit.train` can stop with one line instead of a loader traceback."""

    def __getitem__(self, index: int) -> Any:
        try:
            return self.dataset[index]
        except BAD_SAMPLE_ERRORS as err:
            raise BadSampleError(f"{err} (data.on_bad_sample=skip skips such files)") from err


class SkipBadSamples(_Wrapped):
    """`dataset`, with samples that fail to read replaced by the next readable one.

    The count of skipped reads is shared with loader worker processes (``skipped``).
    """

    def __init__(self, dataset: Dataset) -> None:
        super().__init__(dataset)
        self.skipped = multiprocessing.Value("i", 0)

    def __getitem__(self, index: int) -> Any:
        length = len(self.dataset)
        for offset in range(length):
            try:
                return self.dataset[(index + offset) % length]
            except BAD_SAMPLE_ERRORS as err:
                with self.skipped.get_lock():
                    self.skipped.value += 1
                warnings.warn(f"skipped bad sample: {err}", stacklevel=2)
        raise RuntimeError(f"every one of the {length} samples failed to read")

    def take_count(self) -> int:
        """The number of reads skipped since the last call."""
        with self.skipped.get_lock():
            count, self.skipped.value = self.skipped.value, 0
        return count
