"""Reading segkit checkpoints safely and rebuilding their model from the checkpoint alone.

A segkit checkpoint is Lightning's, plus the resolved run config under `CONFIG_KEY` and the
run's provenance under `PROVENANCE_KEY`, all in plain containers: it loads with
``torch.load(weights_only=True)``, which never runs code from the file. A file that needs more
(pickled callables or classes) is refused rather than unpickled.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

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


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint at `path` as plain containers and tensors (on CPU).

    Raises CheckpointError naming the file: missing, unreadable, holding pickled objects
    (refused, never unpickled), or without segkit's config and weights."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"{path}: refused: it holds pickled Python objects, which could run code when "
            f"loaded ({first}). segkit loads checkpoints with weights_only=True only; re-save "
            "it with plain containers (dicts, lists, numbers, strings, tensors)"
        ) from err
    except Exception as err:  # torch.load's errors for foreign bytes vary (KeyError, ...)
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint ({type(err).__name__}: {err})"
        ) from err
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or CONFIG_KEY not in ckpt:
        raise CheckpointError(
            f"{path}: not a segkit checkpoint: expected 'state_dict' and '{CONFIG_KEY}' "
            "(written by python -m segkit.train)"
        )
    return ckpt


def checkpoint_config(ckpt: dict[str, Any]) -> DictConfig:
    """The resolved run config stored in a checkpoint."""
    return OmegaConf.create(ckpt[CONFIG_KEY])


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
