"""What a run config says about its model, read in one place: the task family and the classes
the model predicts (the network's config is at ``model.net`` in every family). Standard
library and OmegaConf only: config checks call it before torch is imported."""

from __future__ import annotations

from omegaconf import DictConfig

#: Task families, by the class their ``model._target_`` names.
FAMILIES = {
    "InstanceSegmentation": "instance",
    "AdversarialSegmentation": "adversarial",
    "SemanticSegmentation": "semantic",
    "SemiSupervisedSegmentation": "semantic",
    "DomainAdaptation": "adaptation",
}


def task_family(cfg: DictConfig) -> str:
    """ "semantic", "adversarial", "adaptation" or "instance": the family of a run config's
    model (by the class name of ``model._target_``; a user's own task class counts as
    semantic)."""
    name = str(cfg.model.get("_target_", "")).rsplit(".", 1)[-1]
    return FAMILIES.get(name, "semantic")


def num_classes(data: DictConfig, family: str) -> int | None:
    """The classes a model of `family` predicts on `data`: ``instance_num_classes`` for
    instance models where the data has it (Cityscapes' 8 things + background), else
    ``num_classes``."""
    if family == "instance" and data.get("instance_num_classes") is not None:
        return data.instance_num_classes
    return data.get("num_classes")


def class_names(data: DictConfig, family: str) -> list[str]:
    """The names of those classes (background first for instance models); [] if unnamed."""
    names = data.get("instance_class_names") if family == "instance" else None
    return list(names or data.get("class_names") or [])


def is_domain_pair(data: DictConfig) -> bool:
    """Whether a data config pairs a source and a target domain (`segkit.data.domain_pair`)."""
    return data.get("source") is not None and data.get("target") is not None
