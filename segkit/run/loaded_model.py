"""A trained model loaded from a checkpoint for notebooks and scripts (`segkit.load`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from segkit.run.category_ids import internal_ids_note
from segkit.run.facts import class_names, task_family


def load_model(
    ckpt_path: str | Path,
    device: str = "auto",
    precision: str | int = "auto",
    inference: Any = None,
    exif_orientation: bool | None = None,
) -> LoadedModel:
    """The `LoadedModel` of a checkpoint for the ``device`` and ``precision`` options (what
    `segkit.load` and `segkit.predict` run); `exif_orientation` None: the training data's."""
    from segkit.run.from_checkpoint import load_task
    from segkit.run.precision import inference_setting

    device, resolved = inference_setting(device, precision)
    task, config = load_task(ckpt_path, resolved, inference=inference)
    note = internal_ids_note(config, str(ckpt_path))
    if note:
        print(note, file=sys.stderr)
    return LoadedModel(task, config, device, resolved, exif_orientation)


class LoadedModel:
    """A checkpoint's model, ready to predict on images.

    Attributes:
        task: the LightningModule (eval mode) with the checkpoint's weights.
        config: the resolved run config stored in the checkpoint.
        family: "semantic", "adversarial", "adaptation" or "instance".
        class_names: the names of the classes it predicts (background first for instance).
        device: the torch device it runs on.
    """

    def __init__(
        self, task, config: DictConfig, device, precision: str | int, exif_orientation=None
    ) -> None:
        import torch

        from segkit.data.image_reader import ImageReader
        from segkit.data.transforms import channel_stats
        from segkit.run.precision import autocast_dtype

        self.device = torch.device(device)
        self.task, self.config = task.to(self.device), config
        self.family = task_family(config)
        self.class_names = class_names(config.data, self.family)
        self._dtype = autocast_dtype(precision)
        data = config.data
        in_channels = int(data.get("in_channels", 3))
        if exif_orientation is None:
            exif_orientation = bool(data.get("exif_orientation", True))
        #: How images are decoded: as the model's training data was (`ImageReader`).
        self.reader = ImageReader(in_channels, exif_orientation, data.get("bit_depth"))
        self.mean, self.std = channel_stats(in_channels, data.get("mean"), data.get("std"))

    def read(self, image: str | Path | Any) -> np.ndarray:
        """[H,W,C] as the model reads it (`segkit.data.image_reader`): from a path, a Pillow
        image or an array [H,W] / [H,W,C] (uint8, uint16 or float in [0, 1])."""
        if isinstance(image, (str, Path)):
            return self.reader.read(image)
        return self.reader.convert(image, source=f"the given {type(image).__name__}")

    def predict(self, image: str | Path | Any, score_threshold: float = 0.5):
        """Predictions for one image: a path, a PIL image, or an HxW / HxWxC array (uint8,
        uint16, or float in [0, 1]); a list of them gives a list of predictions.

        Semantic models: an HxW int64 array of class indices (the image's displayed size).
        Instance models: COCO-style result dicts (``category_id``, ``bbox`` [x,y,w,h],
        ``score``, ``segmentation`` as RLE) with a score of at least `score_threshold`."""
        if isinstance(image, (list, tuple)):
            return [self.predict(one, score_threshold) for one in image]
        if isinstance(image, np.ndarray) and image.ndim == 4:
            raise ValueError(
                f"the given array is a batch {image.shape}: pass a list of images "
                "(HxW or HxWxC each)"
            )
        array = self.read(image)
        if self.family == "instance":
            from segkit.formats.instances import coco_results

            detections = self.detections(array, score_threshold)
            ids = self.config.data.get("category_ids") or range(1, len(self.class_names))
            return coco_results(0, detections, list(ids))
        return self.class_maps([array])[0].astype(np.int64)

    def detections(self, image: np.ndarray, score_threshold: float = 0.5) -> dict[str, Any]:
        """An instance model's detections on a read image [H,W,3] with a score of at least
        `score_threshold`, on CPU: ``boxes`` [K,4] xyxy, ``labels`` [K], ``scores`` [K],
        ``masks`` bool [K,H,W]."""
        import torch

        from segkit.data.transforms import image_tensor

        x = (image_tensor(image) / 255).to(self.device)
        with torch.no_grad(), self._autocast():
            found = self.task([x])[0]
        keep = found["scores"] >= score_threshold
        return {k: v[keep].cpu() for k, v in found.items()}

    def class_maps(self, images: list[np.ndarray]) -> np.ndarray:
        """Class indices uint8 [B,H,W] of a semantic model for read images of one size
        [H,W,C], normalised as in training, padded to the network's size divisor and cropped
        back (`segkit.inference.padded_logits`)."""
        import torch

        from segkit.data.transforms import image_tensor
        from segkit.inference import padded_logits
        from segkit.models.input_size import input_size_divisor

        x = torch.stack([image_tensor(image) for image in images]).to(self.device)
        mean = torch.tensor(self.mean, device=self.device).view(1, -1, 1, 1) * 255
        std = torch.tensor(self.std, device=self.device).view(1, -1, 1, 1) * 255
        with torch.no_grad(), self._autocast():
            logits = padded_logits(self.task, (x - mean) / std, input_size_divisor(self.task.net))
        return logits.argmax(1).to(torch.uint8).cpu().numpy()

    def _autocast(self):
        import torch

        return torch.autocast(self.device.type, dtype=self._dtype, enabled=self._dtype is not None)
