"""Image files given to `segkit.predict`: found under a path and decoded."""

from __future__ import annotations

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


def read_rgb(path: Path):
    """uint8 [H,W,3]; ImageFileError naming the file if it cannot be decoded."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError) as err:
        raise ImageFileError(f"{path}: not a readable image ({err})") from err
