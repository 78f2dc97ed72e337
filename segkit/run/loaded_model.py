"""A trained model loaded from a checkpoint for notebooks and scripts (`segkit.load`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from segkit.run.facts import class_names, task_family


class LoadedModel:
    """A checkpoint's model, ready to predict on images.

    Attributes:
        task: the LightningModule (eval mode) with the checkpoint's weights.
        config: the resolved run config stored in the checkpoint.
        family: "semantic", "adversarial" or "instance".
        class_names: the names of the classes it predicts (background first for instance).
        device: the torch device it runs on.
    """

    def __init__(self, task, config: DictConfig, device, precision: str | int) -> None:
        import torch

        from segkit.run.precision import autocast_dtype

        self.device = torch.device(device)
        self.task, self.config = task.to(self.device), config
        self.family = task_family(config)
        self.class_names = class_names(config.data, self.family)
        self._dtype = autocast_dtype(precision)

    def predict(self, image: str | Path | Any, score_threshold: float = 0.5):
        """Predictions for one image: a path, a PIL image, or an HxWx3 uint8 array.

        Semantic models: an HxW int64 array of class indices (the image's size). Instance
        models: COCO-style result dicts (``category_id``, ``bbox`` [x,y,w,h], ``score``,
        ``segmentation`` as RLE) with a score of at least `score_threshold`, best first."""
        import torch

        rgb = as_rgb(image)
        if self.family == "instance":
            from segkit.formats.instances import coco_results

            detections = self.detections(rgb, score_threshold)
            ids = self.config.data.get("category_ids") or range(1, len(self.class_names))
            return coco_results(0, detections, list(ids))
        return self.class_maps(torch.tensor(rgb, device=self.device)[None])[0].astype(np.int64)

    def detections(self, rgb: np.ndarray, score_threshold: float = 0.5) -> dict[str, Any]:
        """An instance model's detections on uint8 [H,W,3] with a score of at least
        `score_threshold`, on CPU: ``boxes`` [K,4] xyxy, ``labels`` [K], ``scores`` [K],
        ``masks`` bool [K,H,W]."""
        import torch

        x = torch.from_numpy(rgb).to(self.device).permute(2, 0, 1).float() / 255
        with torch.no_grad(), self._autocast():
            found = self.task([x])[0]
        keep = found["scores"] >= score_threshold
        return {k: v[keep].cpu() for k, v in found.items()}

    def class_maps(self, images) -> np.ndarray:
        """Class indices uint8 [B,H,W] of a semantic model for uint8 images [B,H,W,3] (a torch
        tensor on `device`), normalised as in training, padded to the network's size divisor
        and cropped back (`segkit.inference.padded_logits`)."""
        import torch

        from segkit.data.transforms import IMAGENET_MEAN, IMAGENET_STD
        from segkit.inference import padded_logits
        from segkit.models.input_size import input_size_divisor

        data = self.config.data
        mean = torch.tensor(data.get("mean", IMAGENET_MEAN), device=self.device) * 255
        std = torch.tensor(data.get("std", IMAGENET_STD), device=self.device) * 255
        x = (images.permute(0, 3, 1, 2).float() - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
        with torch.no_grad(), self._autocast():
            logits = padded_logits(self.task, x, input_size_divisor(self.task.net))
        return logits.argmax(1).to(torch.uint8).cpu().numpy()

    def _autocast(self):
        import torch

        kind = torch.device(self.device).type
        return torch.autocast(kind, dtype=self._dtype, enabled=self._dtype is not None)


def as_rgb(image: str | Path | Any) -> np.ndarray:
    """uint8 [H,W,3] of a path, a PIL image or an HxWx3 uint8 array (ValueError otherwise)."""
    from PIL import Image

    from segkit.data.image_files import read_rgb

    if isinstance(image, (str, Path)):
        return read_rgb(Path(image))
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(
            f"expected a path, a PIL image or an HxWx3 uint8 array; got an array of shape "
            f"{array.shape} and dtype {array.dtype}"
        )
    return array
