"""Config keys that moved, and where to. A command line still naming an old key gets one line
naming the new one (`segkit.run.group_choices`) instead of Hydra's "Key ... is not in struct";
run configs stored with old keys are rewritten on load (`segkit.run.config_upgrades`).

Standard library only: it runs before Hydra starts.
"""

from __future__ import annotations

#: A method's values, kept beside the task's (``model.<key>``) before methods were objects;
#: now ``model.method.<key>`` (`segkit.tasks.methods`).
METHOD_VALUES = (
    *("adv_weight", "entropy_weight", "mix_weight", "threshold", "ema_momentum"),
    *("teacher_normalization", "recon_loss", "d_loss_weight", "adv_weight_unlabeled"),
    *("semi_weight", "semi_threshold", "semi_start"),
)
#: old key -> new key (a key's children move with it).
MOVED_KEYS = {
    # model=gan|semi|adapt kept their network at model.segmenter; every family uses model.net.
    "model.segmenter": "model.net",
    **{f"model.{key}": f"model.method.{key}" for key in METHOD_VALUES},
}


def moved(key: str) -> str | None:
    """Today's name of config key `key` if it, or a key above it, moved; else None."""
    for old, new in MOVED_KEYS.items():
        if key == old or key.startswith(old + "."):
            return new + key[len(old) :]
    return None
