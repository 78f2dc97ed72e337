"""Image files given to `segkit.predict`: found under a path, and named for their outputs."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


class ImageFileError(ValueError):
    """An input path without images, or a file that is not a readable image."""


def find_images(source: Path) -> list[Path]:
    """`source` itself, or the images under the directory `source` (sorted)."""
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise ImageFileError(f"input={source}: no such file or directory")
    images = sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise ImageFileError(f"input={source}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return images


def output_names(relative_paths: list[Path]) -> dict[Path, Path]:
    """{input path relative to the input folder: its output name, without suffix}.

    The name is the input's path without its extension (``sub/photo.jpg`` -> ``sub/photo``),
    unless another input in the same folder has the same stem: then every one of them keeps
    its full file name (``photo.webp``, ``photo.tif``), so no output overwrites another."""
    stems = Counter((p.parent, p.stem.lower()) for p in relative_paths)
    return {
        p: p.parent / (p.name if stems[(p.parent, p.stem.lower())] > 1 else p.stem)
        for p in relative_paths
    }
