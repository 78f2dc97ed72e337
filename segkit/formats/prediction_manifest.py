"""``predict_manifest.csv`` of `segkit.predict`, and what it does with unreadable inputs."""

from __future__ import annotations

import sys
from pathlib import Path

from segkit.data.image_files import ImageFileError


class Manifest:
    """``predict_manifest.csv``: one row per input image (``input``, ``output``; skipped
    images get an empty output and their error)."""

    def __init__(self, path: Path) -> None:
        import csv

        self.file = path.open("w", newline="")
        self.rows = csv.writer(self.file)
        self.rows.writerow(["input", "output", "error"])
        self.outputs: list[Path] = []
        self.skipped = 0

    def add(self, source: Path, output: Path) -> None:
        self.rows.writerow([str(source), str(output), ""])
        self.outputs.append(output)

    def skip(self, source: Path, error: Exception) -> None:
        self.rows.writerow([str(source), "", str(error)])
        self.skipped += 1

    def close(self) -> None:
        self.file.close()


def read_or_skip(model, path: Path, on_bad_image: str, manifest: Manifest):
    """The image as `model` reads it; None (reported, listed, counted) for an unreadable one
    under ``on_bad_image=skip``, else ImageFileError naming it."""
    try:
        return model.read(path)
    except (OSError, ValueError) as err:
        if on_bad_image == "error":
            raise ImageFileError(
                f"{err} (predictions written so far are kept; on_bad_image=skip goes on)"
            ) from err
        from tqdm import tqdm

        # A plain line (no warning source line), above the progress bar.
        tqdm.write(f"segkit: skipped {err}", file=sys.stderr)
        manifest.skip(path, err)
        return None
