"""``class_weights: auto`` in a loss config: replaced by weights computed from the training set."""

from __future__ import annotations

import logging
from typing import Any

from omegaconf import DictConfig, ListConfig, open_dict

log = logging.getLogger(__name__)


def auto_class_weight_nodes(node: Any) -> list[DictConfig]:
    """Config nodes (anywhere under `node`) whose ``class_weights`` is "auto"."""
    found: list[DictConfig] = []
    if isinstance(node, DictConfig):
        if node.get("class_weights") == "auto":
            found.append(node)
        for key in node:
            found += auto_class_weight_nodes(node._get_node(key))
    elif isinstance(node, ListConfig):
        for item in node:
            found += auto_class_weight_nodes(item)
    return found


def fill_auto_class_weights(cfg: DictConfig, datamodule: Any) -> list[float] | None:
    """Compute median-frequency weights from one pass over the training loader and write them
    into every ``class_weights: auto`` under ``cfg.loss`` (so the saved config holds numbers).
    With labeled and unlabeled loaders (semi-supervised, domain adaptation) the labeled one
    counts: the supervised loss is the one weighted."""
    nodes = auto_class_weight_nodes(cfg.loss)
    if not nodes:
        return None
    from segkit.losses import median_frequency_weights

    datamodule.setup("fit")
    masks = (batch["mask"] for batch in labeled_loader(datamodule.train_dataloader()))
    weights = median_frequency_weights(masks, cfg.data.num_classes, cfg.data.ignore_index)
    for node in nodes:
        with open_dict(node):
            node.class_weights = weights
    names = cfg.data.get("class_names") or [str(i) for i in range(len(weights))]
    log.info(
        "class weights (median frequency, training set): "
        + ", ".join(f"{n}={w:.3f}" for n, w in zip(names, weights, strict=True))
    )
    return weights


def labeled_loader(loaders: Any) -> Any:
    """The loader of labeled batches among a datamodule's training loaders: the only one, or
    ``"labeled"`` (semi-supervised) or ``"source"`` (domain adaptation) of a dict."""
    if isinstance(loaders, dict):
        for key in ("labeled", "source"):
            if key in loaders:
                return loaders[key]
        raise ValueError(f"no labeled loader among the training loaders {sorted(loaders)}")
    return loaders
