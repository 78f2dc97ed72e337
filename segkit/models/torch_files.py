"""Reading files written by ``torch.save`` (checkpoints, weights) without running code from
them, with one-line errors that say what is wrong with a file that cannot be read.

``torch.load(weights_only=True)`` refuses pickled callables and classes, but its errors do not
tell a file that needs them (which could run code) from one that is no PyTorch file at all (a
text file named ``.ckpt``): both can end as an ``UnpicklingError``. The format is sniffed
first: ``torch.save`` writes a zip archive (a pickle stream in PyTorch before 1.6).
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

#: The first byte of a pickle stream of protocol 2 or later (torch's legacy format too).
_PICKLE_PROTO = 0x80


class TorchFileError(ValueError):
    """A file that is not a usable ``torch.save`` file; the message names it."""


class NotATorchFile(TorchFileError):
    """Missing, empty, truncated, or not written by ``torch.save``."""


class UnsafeTorchFile(TorchFileError):
    """A ``torch.save`` file that holds pickled Python objects (it could run code)."""


def load_torch_file(path: str | Path, what: str = "checkpoint", mmap: bool = False) -> Any:
    """The contents of `path` loaded with ``weights_only=True`` on the CPU (`mmap`: tensors
    mapped from the file, not read, for a quick look at a large zip-format file).

    Raises `NotATorchFile` or `UnsafeTorchFile`, each a one-line message naming the file and
    `what` it was expected to be."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise NotATorchFile(f"{path}: no such {what} file")
    with path.open("rb") as f:
        head = f.read(16)
    if not head:
        raise NotATorchFile(f"{path}: the file is empty, not a PyTorch {what}")
    if not head.startswith(b"PK\x03\x04") and head[0] != _PICKLE_PROTO:
        raise NotATorchFile(
            f"{path}: not a PyTorch {what}: torch.save writes a zip archive, this file starts "
            f"with {head[:12]!r}"
        )
    is_zip = zipfile.is_zipfile(path)  # false for a truncated archive: read it whole
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap and is_zip)
    except pickle.UnpicklingError as err:
        raise UnsafeTorchFile(
            f"{path}: refused: it holds pickled Python objects, which could run code when "
            f"loaded ({_culprit(err)}). segkit loads {what}s with weights_only=True only; "
            "re-save it with plain containers (dicts, lists, numbers, strings, tensors)"
        ) from err
    except Exception as err:  # truncated archives and foreign bytes fail in many ways
        detail = (str(err).strip().splitlines() or [""])[0].split(". ")[0]
        raise NotATorchFile(
            f"{path}: not a readable PyTorch {what}, truncated or damaged "
            f"({type(err).__name__}: {detail})"
        ) from err


def _culprit(err: Exception) -> str:
    """The line of torch's refusal that names what the file wanted to load."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    named = [line for line in lines if "GLOBAL" in line or "global" in line.lower()]
    return (named or lines or [type(err).__name__])[0].rstrip(".")
