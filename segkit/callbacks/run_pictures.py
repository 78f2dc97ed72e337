"""Pictures of a run in its run dir, whatever the logger (CSV, TensorBoard, W&B or none).

- Every validation during training: ``samples/epoch_NNN.png``, a grid of the same validation
  images each epoch, one row per image: image | ground truth | prediction, coloured with the
  dataset's palette (white: ignored pixels), with a class legend. Semantic and adversarial
  models show the segmenter's prediction; Mask R-CNN its instances painted as classes.
- After training (the evaluation of the best checkpoint): ``confusion_matrix.png`` (rows:
  ground truth, row-normalised) and ``per_class_iou.csv`` (class, iou, target_pixels) beside
  ``metrics.json``; after testing, ``test_confusion_matrix.png`` and ``test_per_class_iou.csv``.
- With a TensorBoard logger, the same pictures as images (``val/samples``,
  ``<stage>/confusion_matrix``).

Rank 0 only; the scores it reads are already summed over ranks.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from segkit.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from segkit.tracking.confusion import confusion_figure, scores_per_class
from segkit.tracking.examples import (
    Example,
    class_names_of,
    stage_scores,
    validation_examples,
)

IGNORE_COLOUR = (255, 255, 255)
GAP, HEADER, MIN_TILE = 4, 18, 128


class RunPictures(L.Callback):
    """Writes the sample grids, the confusion matrix and the per-class IoU of a run.

    Args:
        output_dir: the run dir (``${paths.output_dir}``).
        num_images: validation images per grid (0: no grid).
        palette: RGB colour per class (``${data.palette}``); classes beyond it get generated
            colours.
        ignore_index: the label of unlabeled pixels (drawn white).
        mean, std: the normalisation of the data's images (0-1 scale), undone for display.
    """

    def __init__(
        self,
        output_dir: str,
        num_images: int = 4,
        palette: Sequence[Sequence[int]] | None = None,
        ignore_index: int = 255,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        if num_images < 0:
            raise ValueError(f"num_images={num_images} is invalid: expected 0 or more")
        self.output_dir = Path(output_dir)
        self.num_images, self.ignore_index = num_images, ignore_index
        self.palette = [tuple(int(v) for v in colour) for colour in (palette or [])]
        self.mean, self.std = list(mean), list(std)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        if trainer.state.fn == "fit":
            self._write_samples(trainer, pl_module)
        elif trainer.state.fn == "validate":  # the best checkpoint after training
            self._write_scores(trainer, pl_module, "val")

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            self._write_scores(trainer, pl_module, "test")

    def _write_samples(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        examples = validation_examples(trainer, pl_module, self.num_images, self.mean, self.std)
        if not examples:
            return
        names = class_names_of(pl_module)
        grid = sample_grid(examples, names, self.palette, self.ignore_index)
        path = self.output_dir / "samples" / f"epoch_{trainer.current_epoch:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(grid).save(path)
        for logger in _tensorboard_loggers(trainer):
            logger.experiment.add_image(
                "val/samples", grid, global_step=trainer.global_step, dataformats="HWC"
            )

    def _write_scores(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        scores = stage_scores(pl_module, stage)
        if scores is None or scores.confusion is None:
            return
        confusion, names = scores.confusion, list(scores.class_names)
        prefix = "" if stage == "val" else f"{stage}_"
        self.output_dir.mkdir(parents=True, exist_ok=True)
        iou = scores_per_class(confusion)
        with (self.output_dir / f"{prefix}per_class_iou.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["class", "iou", "target_pixels"])
            for name, value, pixels in zip(names, iou, confusion.sum(1).tolist(), strict=True):
                writer.writerow([name, "" if math.isnan(value) else f"{value:.6f}", int(pixels)])
        figure = confusion_figure(confusion.numpy(), names)
        path = self.output_dir / f"{prefix}confusion_matrix.png"
        figure.savefig(path, dpi=100)
        import matplotlib.pyplot as plt

        plt.close(figure)
        for logger in _tensorboard_loggers(trainer):
            picture = np.asarray(Image.open(path).convert("RGB"))
            logger.experiment.add_image(
                f"{stage}/confusion_matrix", picture, trainer.global_step, dataformats="HWC"
            )


def class_colours(palette: Sequence[Sequence[int]], count: int) -> np.ndarray:
    """uint8 [count, 3]: the palette, then generated colours for classes beyond it."""
    colours = [tuple(c) for c in palette[:count]]
    rng = np.random.default_rng(0)
    while len(colours) < count:
        colours.append(tuple(int(v) for v in rng.integers(40, 256, 3)))
    return np.array(colours, dtype=np.uint8).reshape(-1, 3)


def colourise(classes: np.ndarray, colours: np.ndarray, ignore_index: int) -> np.ndarray:
    """Class map [H,W] -> uint8 RGB [H,W,3]; ignored (or unknown) labels white."""
    out = np.empty((*classes.shape, 3), dtype=np.uint8)
    out[:] = IGNORE_COLOUR
    known = (classes >= 0) & (classes < len(colours)) & (classes != ignore_index)
    out[known] = colours[classes[known]]
    return out


def sample_grid(
    examples: Sequence[Example],
    class_names: Sequence[str],
    palette: Sequence[Sequence[int]],
    ignore_index: int = 255,
) -> np.ndarray:
    """uint8 RGB [H,W,3]: a header, one row per example (image | ground truth | prediction,
    small images enlarged by whole factors to at least 128 px) and a class legend."""
    colours = class_colours(palette, len(class_names))
    rows = []
    for example in examples:
        tiles = [
            example.rgb,
            colourise(example.truth, colours, ignore_index),
            colourise(example.prediction, colours, ignore_index),
        ]
        factor = max(1, math.ceil(MIN_TILE / min(example.rgb.shape[:2])))
        tiles = [np.repeat(np.repeat(t, factor, 0), factor, 1) for t in tiles]
        rows.append(tiles)
    tile_w = max(t.shape[1] for row in rows for t in row)
    width = 3 * tile_w + 4 * GAP
    font = ImageFont.load_default()
    legend = _legend(class_names, colours, width, font)
    # the three tiles of a row have the same size
    height = HEADER + sum(row[0].shape[0] + GAP for row in rows) + legend.height
    canvas = Image.new("RGB", (width, height), (32, 32, 32))
    draw = ImageDraw.Draw(canvas)
    for column, title in enumerate(("image", "ground truth", "prediction")):
        draw.text((GAP + column * (tile_w + GAP), 3), title, fill=(235, 235, 235), font=font)
    top = HEADER
    for row in rows:
        for column, tile in enumerate(row):
            canvas.paste(Image.fromarray(tile), (GAP + column * (tile_w + GAP), top))
        top += row[0].shape[0] + GAP
    canvas.paste(legend, (0, top))
    return np.asarray(canvas)


def _legend(names: Sequence[str], colours: np.ndarray, width: int, font) -> Image.Image:
    """Swatches and class names, wrapped to `width`; ignored pixels last."""
    entries = [(name, tuple(int(v) for v in colours[i])) for i, name in enumerate(names)]
    entries.append(("ignore", IGNORE_COLOUR))
    line_h, x, y, placed = 16, GAP, GAP, []
    for name, colour in entries:
        item_w = 12 + 4 + int(font.getlength(name)) + 12
        if x + item_w > width and x > GAP:
            x, y = GAP, y + line_h
        placed.append((x, y, name, colour))
        x += item_w
    legend = Image.new("RGB", (width, y + line_h + GAP), (32, 32, 32))
    draw = ImageDraw.Draw(legend)
    for x, y, name, colour in placed:
        draw.rectangle((x, y + 1, x + 11, y + 12), fill=colour, outline=(200, 200, 200))
        draw.text((x + 16, y), name, fill=(235, 235, 235), font=font)
    return legend


def _tensorboard_loggers(trainer: L.Trainer) -> list:
    from lightning.pytorch.loggers import TensorBoardLogger

    return [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
