"""Every config under conf/ composes, and every `_target_` in it instantiates."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from segkit.run.build import task_config
from segkit.run.compose import CONF_DIR
from segkit.run.precision import resolve_precision

GROUPS = ("model", "data", "loss", "optimizer", "scheduler", "trainer", "logger", "callbacks")
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((Path(CONF_DIR) / g).glob("*.yaml"))]


def test_every_group_has_options():
    assert {g for g, _ in OPTIONS} == set(GROUPS)


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_option_composes_and_instantiates(compose_train, cityscapes_root, tmp_path, group, option):
    # Datasets read from disk get a folder (files are read when a split is first used).
    disk = ("voc", "folder", "ade20k", "coco_instance", "gta5", "synthia", "camvid", "camvid_cpu")
    roots = {"cityscapes": cityscapes_root, **{name: tmp_path for name in disk}}
    extra = [f"data.root={roots[option]}"] if group == "data" and option in roots else []
    if group == "data" and option.endswith("_cityscapes"):  # a domain pair: a root per domain
        extra = [f"data.source.root={tmp_path}", f"data.target.root={cityscapes_root}"]
    cfg = compose_train(f"{group}={option}", *extra)
    OmegaConf.resolve(cfg)  # every interpolation resolves
    node = cfg.get(group)
    if option == "none":
        assert not node  # an empty option: the group is switched off
    elif group == "model":
        task = instantiate(
            task_config(node),
            loss=instantiate(cfg.loss) if cfg.loss else None,  # as in segkit.train
            optimizer=instantiate(cfg.optimizer),
            scheduler=instantiate(cfg.scheduler) if cfg.scheduler else None,
        )
        assert isinstance(task, L.LightningModule)
        if cfg.data.task == "instance":  # Mask R-CNN: per-image detections
            task.eval()
            with torch.no_grad():
                (detections,) = task([torch.rand(3, 64, 64)])
            assert detections["masks"].shape[1:] == (64, 64)
            assert not cfg.loss and cfg.monitor == "val/mask_map"
        else:
            logits = task(torch.zeros(2, cfg.data.in_channels, 64, 64))
            assert logits.shape == (2, cfg.data.num_classes, 64, 64)
    elif group in ("logger", "callbacks"):
        built = [instantiate(c) for c in node.values()]
        kinds = L.pytorch.loggers.Logger if group == "logger" else L.Callback
        assert built and all(isinstance(b, kinds) for b in built)
    elif group == "optimizer":
        opt = instantiate(node)(model=torch.nn.Linear(2, 2))
        assert isinstance(opt, torch.optim.Optimizer)
        assert {g["name"] for g in opt.param_groups} == {"decoder", "decoder_no_decay"}
    elif group == "scheduler":
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        factory = instantiate(node)
        # Run length is filled in by the task; give it here as the task would.
        names = ("total_iters", "total_steps", "T_max")
        filled = {n: 100 for n in names if n in _params(factory)}
        if "max_lr" in _params(factory) and factory.keywords.get("max_lr") is None:
            filled["max_lr"] = [0.1]
        sched = factory(optimizer=opt, **filled)
        assert isinstance(sched, torch.optim.lr_scheduler.LRScheduler)
    elif group == "trainer" and node.accelerator == "gpu":  # no GPU here: check the strategy
        strategy = instantiate(node.strategy)
        assert isinstance(strategy, L.pytorch.strategies.Strategy)
    elif group == "trainer":
        precision = resolve_precision(node.precision, node.accelerator)
        settings = OmegaConf.to_container(node, resolve=True)
        assert settings.pop("on_nonfinite") == "error"  # segkit's key (segkit.train takes it)
        trainer = instantiate(settings, precision=precision, logger=False)
        assert isinstance(trainer, L.Trainer)
    elif group == "data":
        assert isinstance(instantiate(node, _convert_="all"), L.LightningDataModule)
        for key in ("num_classes", "ignore_index", "class_names", "palette", "in_channels"):
            assert key in node, f"data config {option} lacks {key}"
    else:
        assert callable(instantiate(node))


def _params(factory):
    import inspect

    return inspect.signature(getattr(factory, "func", factory)).parameters
