"""Files `segkit.predict` writes: semantic maps in several formats, instance detections as
COCO results and overlays."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from segkit.formats.instances import coco_categories, coco_results


def palette_array(palette: Sequence[Sequence[int]] | None, num: int = 256) -> np.ndarray:
    """uint8 [256,3] colours: the dataset palette, then a fixed pseudo-random fill."""
    colours = np.random.default_rng(0).integers(0, 256, size=(num, 3), dtype=np.uint8)
    if palette:
        colours[: len(palette)] = np.asarray(palette, dtype=np.uint8)
    return colours


def blend(rgb: np.ndarray, colours: np.ndarray, alpha: float) -> np.ndarray:
    mixed = (1 - alpha) * rgb.astype(np.float32) + alpha * colours.astype(np.float32)
    return mixed.round().astype(np.uint8)


def png_path(out: Path, name: Path) -> Path:
    """``<out>/<name>.png`` (`name` may hold dots: ``photo.webp`` -> ``photo.webp.png``)."""
    return out / name.parent / f"{name.name}.png"


class SemanticWriter:
    """Writes class maps [H,W] (uint8) as ``index``, ``color``, ``overlay`` or ``cityscapes``."""

    def __init__(self, out: Path, fmt: str, palette, alpha: float = 0.5) -> None:
        self.out, self.fmt, self.alpha = Path(out), fmt, alpha
        self.colours = palette_array(palette)
        if fmt == "cityscapes":
            from segkit.formats.cityscapes_official import LabelIdWriter

            self.label_ids = LabelIdWriter(self.out)

    def write(self, name: Path, classes: np.ndarray, rgb: np.ndarray) -> Path:
        """Write the map of the image named `name` (relative, no suffix; `output_names` of
        `segkit.data.image_files`) as ``<out>/<name>.png``; `rgb` uint8 [H,W,3] for overlays."""
        if self.fmt == "cityscapes":
            return self.label_ids.write(name.name.removesuffix("_leftImg8bit"), classes)
        path = png_path(self.out, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        if self.fmt == "index":
            Image.fromarray(classes).save(path)
        elif self.fmt == "color":
            image = Image.fromarray(classes, mode="P")
            image.putpalette(self.colours.reshape(-1).tolist())
            image.save(path)
        else:  # overlay
            Image.fromarray(blend(rgb, self.colours[classes], self.alpha)).save(path)
        return path


class InstanceWriter:
    """Collects detections (``boxes`` xyxy, ``labels`` 1..K, ``scores``, bool ``masks``
    [N,H,W]) as COCO results and writes one overlay PNG per image."""

    def __init__(self, out: Path, names: Sequence[str], category_ids=None, alpha=0.5) -> None:
        self.out, self.alpha = Path(out), alpha
        self.category_ids = list(category_ids or range(1, len(names) + 1))
        self.names = list(names)
        self.colours = palette_array(None)
        self.results: list[dict] = []
        self.images: list[dict] = []
        self.written: list[Path] = []

    def add(
        self, image_id: int, relative: Path, name: Path, rgb: np.ndarray, detections: dict
    ) -> Path:
        """Record the detections of the input `relative` and write its overlay
        ``<out>/<name>.png``; return that path."""
        height, width = rgb.shape[:2]
        self.images.append(
            {"id": image_id, "file_name": str(relative), "height": height, "width": width}
        )
        self.results += coco_results(image_id, detections, self.category_ids)
        canvas = rgb.copy()
        for label, mask in zip(detections["labels"].tolist(), detections["masks"], strict=True):
            on = mask.bool().numpy()
            canvas[on] = blend(canvas[on], self.colours[label][None], self.alpha)
        path = png_path(self.out, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(canvas).save(path)
        self.written.append(path)
        return path

    def finish(self) -> list[Path]:
        results, images = self.out / "coco_results.json", self.out / "coco_images.json"
        results.write_text(json.dumps(self.results))
        categories = coco_categories(self.names, self.category_ids)
        images.write_text(json.dumps({"images": self.images, "categories": categories}))
        return [*self.written, results, images]
