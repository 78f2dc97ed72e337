"""Run configs stored by earlier segkit versions, rewritten into today's form so that their
checkpoints still load (`segkit.run.checkpoints.checkpoint_config`). Each upgrade names the
form it rewrites; configs already in today's form pass through unchanged."""

from __future__ import annotations

import inspect

from hydra.utils import get_class
from omegaconf import DictConfig

#: Tasks whose configs named their method before methods were objects, with the values kept
#: beside the task's: (the classes those names meant, every such value any method took).
#: ``seg_weight`` and ``consistency`` stayed the adversarial task's.
OLD_METHOD_NAMES = {
    "DomainAdaptation": (
        {
            "source_only": "segkit.tasks.methods.source_only.SourceOnly",
            "minent": "segkit.tasks.methods.minent.MinEnt",
            "adaptsegnet": "segkit.tasks.methods.adaptsegnet.AdaptSegNet",
            "advent": "segkit.tasks.methods.advent.ADVENT",
            "dacs": "segkit.tasks.methods.dacs.DACS",
        },
        (
            *("adv_weight", "entropy_weight", "mix_weight", "threshold", "ema_momentum"),
            "teacher_normalization",
        ),
    ),
    "AdversarialSegmentation": (
        {
            "luc2016": "segkit.tasks.methods.luc2016.Luc2016",
            "pix2pix": "segkit.tasks.methods.pix2pix.Pix2Pix",
            "hung2018": "segkit.tasks.methods.hung2018.Hung2018",
        },
        (
            *("recon_loss", "adv_weight", "d_loss_weight", "adv_weight_unlabeled"),
            *("semi_weight", "semi_threshold", "semi_start"),
        ),
    ),
}


def upgrade_config(cfg: DictConfig) -> DictConfig:
    """`cfg` in today's form (changed in place and returned)."""
    model = cfg.get("model")
    if not isinstance(model, DictConfig) or not isinstance(model.get("method"), str):
        return cfg
    task = str(model.get("_target_", "")).rsplit(".", 1)[-1]
    names, keys = OLD_METHOD_NAMES.get(task, ({}, ()))
    if model.method not in names:
        return cfg
    target = names[model.method]
    # Each method object takes its own values; the others' (kept by old configs) are dropped.
    accepted = inspect.signature(get_class(target)).parameters
    values = {k: model[k] for k in keys if k in model and k in accepted}
    for key in keys:
        model.pop(key, None)
    model.method = {"_target_": target, **values}
    return cfg
