"""What `segkit.eval` and `segkit.predict` share: a checkpoint's task and data config, and a
Lightning Trainer for the requested device and precision."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from segkit.checkpoints import build_task, check_classes, checkpoint_config, load_checkpoint


def data_config(ckpt_cfg: DictConfig, cfg: DictConfig, chosen_data: str | None) -> DictConfig:
    """The data config to use: a ``data=<name>`` choice as composed, else the checkpoint's
    with any ``+data.<key>=...`` overrides merged in; loader overrides applied."""
    if chosen_data:
        data = OmegaConf.create(OmegaConf.to_container(cfg.data, resolve=True))
    else:
        data = OmegaConf.merge(ckpt_cfg.data, cfg.get("data") or {})
    if cfg.get("batch_size"):
        data.batch_size = cfg.batch_size
        if "val_batch_size" in data:
            data.val_batch_size = cfg.batch_size
    if cfg.get("num_workers") is not None:
        data.num_workers = cfg.num_workers
    return data


def load_task(ckpt_path: str) -> tuple[Any, DictConfig]:
    """(task in eval mode with the checkpoint's weights, the checkpoint's run config)."""
    ckpt = load_checkpoint(ckpt_path)
    return build_task(ckpt, ckpt_path), checkpoint_config(ckpt)


def load_task_for_data(
    ckpt_path: str, cfg: DictConfig, chosen_data: str | None
) -> tuple[Any, DictConfig, DictConfig]:
    """(task, checkpoint config, data config), refusing data the model was not trained for."""
    task, ckpt_cfg = load_task(ckpt_path)
    data = data_config(ckpt_cfg, cfg, chosen_data)
    check_classes(ckpt_cfg, data, ckpt_path)
    return task, ckpt_cfg, data


def inference_trainer(device: str, precision: str, root_dir: Path):
    """A one-device Trainer without loggers or checkpoints; files a task writes (e.g. the
    instance task's ``predictions/``) go under `root_dir`."""
    import lightning as L

    from segkit.utils.precision import trainer_precision

    accelerator, devices = device, 1
    if device.startswith("cuda:"):
        accelerator, devices = "cuda", [int(device.split(":", 1)[1])]
    return L.Trainer(
        accelerator=accelerator,
        devices=devices,
        **trainer_precision(precision, accelerator),
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        default_root_dir=str(root_dir),
    )


def default_output_dir(ckpt_path: str, *parts: str) -> Path:
    """<run dir>/<parts...> for a checkpoint at <run dir>/checkpoints/<name>.ckpt."""
    path = Path(ckpt_path).resolve()
    run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    return run_dir.joinpath(*parts)
