"""What `segkit.eval`, `segkit.predict`, `segkit.export` and `segkit.load` share: a
checkpoint's task (built by `segkit.run.build.build_task`) and the data config to use."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from segkit.run.checkpoints import check_classes, checkpoint_config, load_checkpoint
from segkit.run.facts import is_domain_pair


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
        # A domain pair's loaders are its two domains' (segkit.data.domain_pair).
        for node in (data.source, data.target) if is_domain_pair(data) else (data,):
            node.num_workers = cfg.num_workers
    return data


def load_task(
    ckpt_path: str | Path,
    precision: str | int = "32-true",
    inference: Mapping[str, Any] | None = None,
) -> tuple[Any, DictConfig]:
    """(task in eval mode with the checkpoint's weights, the checkpoint's run config), the
    task built for the job's resolved `precision` and `inference` options."""
    from segkit.run.build import build_task
    from segkit.run.plan import plan_job

    ckpt = load_checkpoint(ckpt_path)
    cfg = checkpoint_config(ckpt)
    plan = plan_job(cfg, precision=precision)
    task = build_task(
        cfg, plan, state_dict=ckpt["state_dict"], inference=inference, source=ckpt_path
    )
    return task, cfg


def load_task_for_data(
    ckpt_path: str,
    cfg: DictConfig,
    chosen_data: str | None,
    precision: str | int,
    inference: Mapping[str, Any] | None = None,
) -> tuple[Any, DictConfig, DictConfig]:
    """(task, checkpoint config, data config), refusing data the model was not trained for."""
    task, ckpt_cfg = load_task(ckpt_path, precision, inference)
    data = data_config(ckpt_cfg, cfg, chosen_data)
    check_classes(ckpt_cfg, data, ckpt_path)
    return task, ckpt_cfg, data


def default_output_dir(ckpt_path: str, *parts: str) -> Path:
    """<run dir>/<parts...> for a checkpoint at <run dir>/checkpoints/<name>.ckpt."""
    path = Path(ckpt_path).resolve()
    run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    return run_dir.joinpath(*parts)
