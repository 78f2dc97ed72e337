"""Instance predictions written in the formats evaluation servers and tools read.

- COCO results JSON: ``[{"image_id", "category_id", "bbox" [x,y,w,h], "score",
  "segmentation": RLE}]``, plus the matching ground truth as a COCO instances file, so
  pycocotools' ``COCOeval`` can score the pair directly.
- Cityscapes instance format: per image ``<name>.txt`` with one line
  ``<mask png> <labelId> <score>`` per detection, and the binary mask PNGs beside it (what
  cityscapesScripts' ``evalInstanceLevelSemanticLabeling`` reads).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from segkit.formats.coco_rle import encode_rle


def xywh(boxes: torch.Tensor) -> list[list[float]]:
    """xyxy boxes [N,4] -> COCO [x, y, width, height] lists."""
    out = boxes.detach().cpu().double().clone()
    out[:, 2:] -= out[:, :2]
    return out.tolist()


def coco_categories(names: Sequence[str], category_ids: Sequence[int]) -> list[dict]:
    """COCO ``categories``: label k (1..K) is ``names[k - 1]`` with id ``category_ids[k - 1]``."""
    return [{"id": int(c), "name": n} for c, n in zip(category_ids, names, strict=True)]


def coco_results(
    image_id: int, pred: dict[str, torch.Tensor], category_ids: Sequence[int]
) -> list[dict]:
    """COCO results entries of one image's detections (``boxes`` xyxy, ``labels`` 1..K,
    ``scores``, bool ``masks`` [K,H,W] as RLE)."""
    return [
        {
            "image_id": image_id,
            "category_id": category_ids[label - 1],
            "bbox": box,
            "score": float(score),
            "segmentation": encode_rle(mask.cpu().numpy()),
        }
        for box, label, score, mask in zip(
            xywh(pred["boxes"]),
            pred["labels"].tolist(),
            pred["scores"].tolist(),
            pred["masks"],
            strict=True,
        )
    ]


class CocoRecorder:
    """Collects predictions and ground truth of an epoch as COCO JSON documents.

    Args:
        category_names: name of label k at index k - 1 (labels 1..K).
        category_ids: COCO category id of label k at index k - 1 (default: k itself).
    """

    def __init__(
        self, category_names: Sequence[str], category_ids: Sequence[int] | None = None
    ) -> None:
        self.category_ids = list(category_ids or range(1, len(category_names) + 1))
        self.categories = coco_categories(category_names, self.category_ids)
        self.reset()

    def reset(self) -> None:
        self.images: list[dict] = []
        self.annotations: list[dict] = []
        self.results: list[dict] = []

    def add(self, name: str, pred: dict[str, torch.Tensor], target: dict[str, torch.Tensor],
            image_id: int | None = None) -> None:  # fmt: skip
        """One image: `pred` with bool ``masks`` [K,H,W], `target` with ``masks`` [N,H,W] (and,
        from COCO files, ``iscrowd`` and ``area`` [N], written as they are)."""
        height, width = target["masks"].shape[-2:]
        image_id = len(self.images) + 1 if image_id is None else int(image_id)
        self.images.append({"id": image_id, "file_name": name, "height": height, "width": width})
        masks = target["masks"].bool()
        crowd = target.get("iscrowd", torch.zeros(len(masks), dtype=torch.int64)).tolist()
        areas = target.get("area", masks.flatten(1).sum(1).float()).tolist()
        for box, label, mask, iscrowd, area in zip(
            xywh(target["boxes"]), target["labels"].tolist(), masks, crowd, areas, strict=True
        ):
            self.annotations.append(
                {
                    "id": len(self.annotations) + 1,
                    "image_id": image_id,
                    "category_id": self.category_ids[label - 1],
                    "bbox": box,
                    "area": float(area),
                    "segmentation": encode_rle(mask.cpu().numpy()),
                    "iscrowd": int(iscrowd),
                }
            )
        self.results += coco_results(image_id, pred, self.category_ids)

    def write(self, directory: Path, stage: str) -> tuple[Path, Path]:
        """Write ``<stage>_coco_results.json`` and ``<stage>_coco_gt.json``; return both."""
        directory.mkdir(parents=True, exist_ok=True)
        results, gt = directory / f"{stage}_coco_results.json", directory / f"{stage}_coco_gt.json"
        results.write_text(json.dumps(self.results))
        document = {
            "images": self.images,
            "annotations": self.annotations,
            "categories": self.categories,
        }
        gt.write_text(json.dumps(document))
        return results, gt


def write_cityscapes_instances(
    directory: Path, name: str, pred: dict[str, torch.Tensor], label_ids: Sequence[int]
) -> Path:
    """Write one image's detections in the Cityscapes instance format; return the txt file.

    `label_ids[k - 1]` is the Cityscapes labelId of label k (e.g. 24 for person).
    """
    directory.mkdir(parents=True, exist_ok=True)
    lines = []
    for k, (label, score, mask) in enumerate(
        zip(pred["labels"].tolist(), pred["scores"].tolist(), pred["masks"], strict=True)
    ):
        png = f"{name}_{k:03d}.png"
        Image.fromarray(mask.cpu().numpy().astype(np.uint8) * 255).save(directory / png)
        lines.append(f"{png} {label_ids[label - 1]} {score:.6f}")
    txt = directory / f"{name}.txt"
    txt.write_text("\n".join(lines) + ("\n" if lines else ""))
    return txt


def paint_instances(
    masks: torch.Tensor, labels: torch.Tensor, scores: torch.Tensor | None = None
) -> torch.Tensor:
    """Semantic view [H,W] of instance masks [N,H,W]: each pixel takes the label of the
    highest-scoring instance covering it (of the last one without scores), 0 elsewhere."""
    semantic = torch.zeros(masks.shape[-2:], dtype=torch.long, device=masks.device)
    order = scores.argsort() if scores is not None else torch.arange(len(labels))
    for index in order.tolist():  # ascending: the best instance is painted last
        semantic[masks[index].bool()] = labels[index]
    return semantic
