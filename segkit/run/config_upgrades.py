"""Run configs stored by earlier segkit versions, rewritten into today's form so that their
checkpoints still load (`segkit.run.checkpoints.checkpoint_config`). Each upgrade names the
form it rewrites; configs already in today's form pass through unchanged."""

from __future__ import annotations

from omegaconf import DictConfig

#: ``model=adapt`` before methods were objects: ``model.method`` named the method and its
#: values sat beside the task's. The classes those names meant, and the values each took.
ADAPT_METHOD_NAMES = {
    "source_only": ("segkit.tasks.methods.source_only.SourceOnly", ()),
    "minent": ("segkit.tasks.methods.minent.MinEnt", ("entropy_weight",)),
    "adaptsegnet": ("segkit.tasks.methods.adaptsegnet.AdaptSegNet", ("adv_weight",)),
    "advent": ("segkit.tasks.methods.advent.ADVENT", ("adv_weight",)),
    "dacs": (
        "segkit.tasks.methods.dacs.DACS",
        ("mix_weight", "threshold", "ema_momentum", "teacher_normalization"),
    ),
}
#: Every method value those configs kept beside the task's (all of them, for any method).
ADAPT_METHOD_KEYS = (
    *("adv_weight", "entropy_weight", "mix_weight", "threshold", "ema_momentum"),
    "teacher_normalization",
)


#: ``model=gan`` (and ``fixmatch_hung2018``) before methods were objects: the same, with
#: ``seg_weight`` and ``consistency`` staying the task's.
GAN_METHOD_NAMES = {
    "luc2016": "segkit.tasks.methods.luc2016.Luc2016",
    "pix2pix": "segkit.tasks.methods.pix2pix.Pix2Pix",
    "hung2018": "segkit.tasks.methods.hung2018.Hung2018",
}
GAN_METHOD_KEYS = (
    *("recon_loss", "adv_weight", "d_loss_weight", "adv_weight_unlabeled", "semi_weight"),
    *("semi_threshold", "semi_start"),
)


def upgrade_config(cfg: DictConfig) -> DictConfig:
    """`cfg` in today's form (changed in place and returned)."""
    model = cfg.get("model")
    if not isinstance(model, DictConfig) or not isinstance(model.get("method"), str):
        return cfg
    task = str(model.get("_target_", ""))
    if task.endswith(".DomainAdaptation") and model.method in ADAPT_METHOD_NAMES:
        target, keys = ADAPT_METHOD_NAMES[model.method]
        model.method = {"_target_": target, **{k: model[k] for k in keys if k in model}}
        for key in ADAPT_METHOD_KEYS:
            model.pop(key, None)
    elif task.endswith(".AdversarialSegmentation") and model.method in GAN_METHOD_NAMES:
        target = GAN_METHOD_NAMES[model.method]
        model.method = {"_target_": target, **{k: model[k] for k in GAN_METHOD_KEYS if k in model}}
        for key in GAN_METHOD_KEYS:
            model.pop(key, None)
    return cfg
