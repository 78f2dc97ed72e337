"""``class_weights: auto`` with two training loaders: the labeled one is counted (the source
domain of domain adaptation, the labeled part of semi-supervised data)."""

from __future__ import annotations

import pytest
from hydra.utils import instantiate

from segkit.losses import median_frequency_weights
from segkit.run.class_weights import fill_auto_class_weights, labeled_loader

SIZES = ("train_size=8", "val_size=4", "test_size=4", "image_size=32", "num_workers=0")


@pytest.mark.parametrize("family", ["adapt", "semi"])
def test_auto_class_weights_come_from_the_labeled_loader(compose_train, family):
    if family == "adapt":
        overrides = ["model=adapt", "data=synthetic_shift", "data.batch_size=4"]
        overrides += [f"data.{domain}.{s}" for domain in ("source", "target") for s in SIZES]
    else:
        overrides = ["model=semi", "data.labeled_fraction=0.5", "data.batch_size=2"]
        overrides += [f"data.{s}" for s in SIZES]
    cfg = compose_train(*overrides, "loss.class_weights=auto")
    datamodule = instantiate(cfg.data)
    weights = fill_auto_class_weights(cfg, datamodule)
    labeled = (
        datamodule.source_train()
        if family == "adapt"
        else datamodule.labeled_split()[0]  # the labeled half of the 8 scenes
    )
    masks = [labeled[i]["mask"] for i in range(len(labeled))]
    assert weights == median_frequency_weights(masks, 5) and len(weights) == 5
    assert list(cfg.loss.class_weights) == weights  # the saved config holds the numbers
    with pytest.raises(ValueError, match=r"no labeled loader among .*\['target'\]"):
        labeled_loader({"target": None})
