"""A COCO-format dataset's own category ids, recorded in the run's config before it is saved:
checkpoints then carry them, and `segkit.predict` / `segkit.load` name the annotation file's
ids (sparse, e.g. COCO's 1..90 with gaps) instead of the model's internal labels 1..K."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, open_dict


def record_category_ids(cfg: DictConfig, datamodule: Any) -> list[int] | None:
    """Write the datamodule's category ids (labels 1..K -> ids) into ``cfg.data.category_ids``
    when it has them (COCO-format data); return them."""
    category_ids = getattr(datamodule, "category_ids", None)
    if category_ids is None:
        return None
    ids = category_ids()  # the training annotations' (checked against data.category_ids)
    with open_dict(cfg.data):
        cfg.data.category_ids = ids
    return ids


def internal_ids_note(config: DictConfig, source: str) -> str | None:
    """The one-line note for an instance checkpoint of COCO-format data written before its
    category ids were recorded (None otherwise): its predictions name labels 1..K."""
    data = config.get("data") or {}
    if not str(data.get("_target_", "")).endswith("CocoInstanceDataModule"):
        return None
    if data.get("category_ids"):
        return None
    return (
        f"segkit: {source} records no COCO category ids (written before segkit kept them): "
        "predictions name the model's internal labels 1..K, not the annotation file's ids"
    )
