"""Run configs stored by earlier segkit versions, rewritten into today's form so that their
checkpoints still load (`segkit.run.checkpoints.checkpoint_config`). Each upgrade names the
form it rewrites; configs already in today's form pass through unchanged."""

from __future__ import annotations

import inspect

from hydra.utils import get_class
from omegaconf import DictConfig

from segkit.run.moved_keys import METHOD_VALUES

#: Tasks whose configs named their method before methods were objects, with its values kept
#: beside the task's (`segkit.run.moved_keys.METHOD_VALUES`): the classes those names meant.
#: ``seg_weight`` and ``consistency`` stayed the adversarial task's.
OLD_METHOD_NAMES = {
    "DomainAdaptation": {
        "source_only": "segkit.tasks.methods.source_only.SourceOnly",
        "minent": "segkit.tasks.methods.minent.MinEnt",
        "adaptsegnet": "segkit.tasks.methods.adaptsegnet.AdaptSegNet",
        "advent": "segkit.tasks.methods.advent.ADVENT",
        "dacs": "segkit.tasks.methods.dacs.DACS",
    },
    "AdversarialSegmentation": {
        "luc2016": "segkit.tasks.methods.luc2016.Luc2016",
        "pix2pix": "segkit.tasks.methods.pix2pix.Pix2Pix",
        "hung2018": "segkit.tasks.methods.hung2018.Hung2018",
    },
}
#: Tasks whose configs kept the network at ``model.segmenter`` (their ``segmenter=``
#: argument) before it sat at ``model.net`` in every family.
OLD_SEGMENTER_KEY = ("AdversarialSegmentation", "SemiSupervisedSegmentation", "DomainAdaptation")


def upgrade_config(cfg: DictConfig) -> DictConfig:
    """`cfg` in today's form (changed in place and returned)."""
    model = cfg.get("model")
    if isinstance(model, DictConfig):
        task = str(model.get("_target_", "")).rsplit(".", 1)[-1]
        if task in OLD_SEGMENTER_KEY and "segmenter" in model and "net" not in model:
            model.net = model.pop("segmenter")
        if isinstance(model.get("method"), str):
            _method_object(model, task)
    return cfg


def _method_object(model: DictConfig, task: str) -> None:
    """An old method name and its values (beside the task's) -> a method object's config."""
    names = OLD_METHOD_NAMES.get(task, {})
    if model.method not in names:
        return
    target = names[model.method]
    # Each method object takes its own values; the others' (kept by old configs) are dropped.
    accepted = inspect.signature(get_class(target)).parameters
    values = {k: model[k] for k in METHOD_VALUES if k in model and k in accepted}
    for key in METHOD_VALUES:
        model.pop(key, None)
    model.method = {"_target_": target, **values}
