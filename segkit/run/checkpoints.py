"""Reading segkit checkpoints safely and rebuilding their model from the checkpoint alone.

A segkit checkpoint is Lightning's, plus the resolved run config under `CONFIG_KEY` and the
run's provenance under `PROVENANCE_KEY`, all in plain containers: it loads with
``torch.load(weights_only=True)``, which never runs code from the file. A file that needs more
(pickled callables or classes) is refused rather than unpickled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from segkit.run.config_upgrades import upgrade_config
from segkit.run.facts import class_names, num_classes, task_family

#: Key under which a checkpoint carries the resolved run config (to rebuild the model from the
#: checkpoint alone: ``hydra.utils.instantiate(ckpt[CONFIG_KEY]["model"]["net"])``).
CONFIG_KEY = "segkit_config"
#: Key under which a checkpoint carries its run's provenance (`segkit.run.provenance`).
PROVENANCE_KEY = "segkit_provenance"

#: Network config keys that name weights to download or read from caches: a rebuilt network
#: gets its weights from the checkpoint, so they are cleared (`segkit.run.build.build_task`).
WEIGHT_KEYS = ("encoder_weights", "weights", "weights_backbone")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: unreadable, unsafe, not segkit's, or not matching."""


def load_checkpoint(path: str | Path, mmap: bool = False) -> dict[str, Any]:
    """The checkpoint at `path` as plain containers and tensors (on CPU; `mmap`: tensors
    mapped from the file, for a quick look at its config).

    Raises CheckpointError naming the file: missing, not a PyTorch file, holding pickled
    objects (refused, never unpickled), or without segkit's config and weights."""
    from segkit.models.torch_files import TorchFileError, load_torch_file

    try:
        ckpt = load_torch_file(path, "checkpoint", mmap=mmap)
    except TorchFileError as err:
        raise CheckpointError(str(err)) from err
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or CONFIG_KEY not in ckpt:
        raise CheckpointError(
            f"{path}: not a segkit checkpoint: expected 'state_dict' and '{CONFIG_KEY}' "
            "(written by python -m segkit.train)"
        )
    return ckpt


def check_family(path: str | Path, cfg: DictConfig, ckpt: dict[str, Any] | None = None) -> None:
    """CheckpointError unless the checkpoint at `path` holds a model of the family `cfg`
    trains (a semantic checkpoint cannot continue an adversarial run)."""
    ckpt = ckpt if ckpt is not None else load_checkpoint(path, mmap=True)
    stored, wanted = task_family(checkpoint_config(ckpt)), task_family(cfg)
    if stored != wanted:
        raise CheckpointError(
            f"{path}: a checkpoint of {_article(stored)} {stored} model; this config trains "
            f"{_article(wanted)} {wanted} model (model._target_ "
            f"{str(cfg.model.get('_target_', '?')).rsplit('.', 1)[-1]})"
        )


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def checkpoint_config(ckpt: dict[str, Any]) -> DictConfig:
    """The resolved run config stored in a checkpoint (in today's form: `upgrade_config`)."""
    return upgrade_config(OmegaConf.create(ckpt[CONFIG_KEY]))


def check_classes(cfg: DictConfig, data_cfg: DictConfig, path: str | Path) -> None:
    """CheckpointError unless the data gives the samples and classes the model was trained on."""
    kind = task_family(cfg)
    data_task = data_cfg.get("task", "semantic")
    if (kind == "instance") != (data_task == "instance"):
        raise CheckpointError(
            f"{path}: {'an' if kind[0] in 'aeiou' else 'a'} {kind} model cannot be evaluated "
            f"on {data_task} samples "
            f"(data {data_cfg.get('_target_', '?').rsplit('.', 1)[-1]}, task={data_task})"
        )
    trained, given = num_classes(cfg.data, kind), num_classes(data_cfg, kind)
    if trained != given:
        raise CheckpointError(
            f"{path}: the model predicts {trained} classes "
            f"({class_names(cfg.data, kind)}) but the data has {given}"
        )
