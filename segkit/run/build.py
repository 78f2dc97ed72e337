"""The one way segkit turns a run config into a task and a Trainer: training, `segkit.eval`,
`segkit.predict`, `segkit.export`, `segkit.load`, the bench and the GPU check all call it.

Everything a task needs goes through its constructor (`build_task`): the network, loss,
optimizer and scheduler factories from the config, plus what the job decided
(`segkit.run.plan.JobPlan`: the channels-last choice for its precision,
``trainer.on_nonfinite``) and eval/predict's ``inference``. Nothing is set on a task after it
is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from segkit.run.checkpoints import CONFIG_KEY, PROVENANCE_KEY, WEIGHT_KEYS, CheckpointError
from segkit.run.config_checks import ConfigError
from segkit.run.launch import is_rank_zero
from segkit.run.plan import JobPlan, plan_job

#: Model config keys read here rather than passed to the task: loading weights is a step of
#: building the network, and a checkpoint must not point at a file it no longer needs.
PRETRAINED_KEYS = ("pretrained", "pretrained_strict", "pretrained_target")
#: Model config keys other configs read (trainer=ddp: whether DDP must look for parameters a
#: backward pass leaves out, as the alternating steps of adversarial models do).
TRAINER_KEYS = ("ddp_find_unused_parameters",)


def task_config(model_cfg: DictConfig) -> DictConfig:
    """The model config, resolved, without `PRETRAINED_KEYS` and `TRAINER_KEYS`."""
    resolved = OmegaConf.to_container(model_cfg, resolve=True)
    skipped = PRETRAINED_KEYS + TRAINER_KEYS
    return OmegaConf.create({k: v for k, v in resolved.items() if k not in skipped})


def build_task(
    cfg: DictConfig,
    plan: JobPlan | None = None,
    *,
    state_dict: Mapping[str, Any] | None = None,
    inference: Mapping[str, Any] | None = None,
    source: str | Path = "checkpoint",
):
    """The LightningModule of ``cfg.model`` with its loss, optimizer and scheduler factories.

    Args:
        cfg: a run config (composed, or stored in a checkpoint).
        plan: what the job decided (`segkit.run.plan.plan_job`; None: the plan of `cfg` as
            configured): semantic tasks run channels-last as it says (under mixed precision
            when ``model.channels_last=auto``) and every task gets its ``on_nonfinite``.
        state_dict: None to train: ``model.pretrained`` is loaded and the network checked
            against the data's image size. A checkpoint's ``state_dict``: the network is built
            without any pretrained weights (nothing downloaded or read from caches), every
            tensor is loaded strictly, and the task is returned in eval mode.
        inference: `segkit.inference.InferenceOptions` fields for val/test/predict of semantic
            tasks (instance tasks take none).
        source: the checkpoint's path, named in errors.
    """
    from hydra.utils import instantiate

    plan = plan or plan_job(cfg)
    model_cfg = task_config(cfg.model)
    if state_dict is not None:
        net = model_cfg.net
        for key in WEIGHT_KEYS:
            if key in net:
                net[key] = None
    decided: dict[str, Any] = {"on_nonfinite": plan.on_nonfinite}
    if plan.family != "instance":
        decided["channels_last"] = plan.channels_last
        decided["inference"] = plain(inference) if inference else None
    elif inference and any(v not in (None, False, [1.0]) for v in plain(inference).values()):
        raise ConfigError("inference=...: instance models predict whole images only")
    task = instantiate(
        model_cfg,
        _convert_="all",  # plain lists/dicts: checkpoints must load with weights_only=True
        loss=instantiate(cfg.loss, _convert_="all") if cfg.get("loss") else None,
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
        **decided,
    )
    if state_dict is None:
        prepare_net(task.net, cfg)
        return task
    try:
        task.load_state_dict(state_dict, strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"{source}: weights do not fit the stored model: {err}") from err
    return task.eval()


def plain(node: Any) -> Any:
    """Plain containers of a config node (hyperparameters load with ``weights_only=True``)."""
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def prepare_net(net, cfg: DictConfig) -> None:
    """Freeze the parameters its forward never uses, load `model.pretrained` into the built
    network and check it accepts the data's size."""
    from segkit.models.input_size import check_input_size
    from segkit.models.pretrained import load_pretrained
    from segkit.models.unused_parameters import freeze_unused_encoder_head

    freeze_unused_encoder_head(net)  # DDP needs every trained parameter to get a gradient

    path = cfg.model.get("pretrained")
    if path:
        try:
            report = load_pretrained(
                net,
                path,
                strict=bool(cfg.model.get("pretrained_strict", False)),
                target=str(cfg.model.get("pretrained_target", "auto")),
            )
        except (OSError, ValueError) as err:
            raise ConfigError(f"model.pretrained={path}: {err}") from err
        if is_rank_zero():
            print(report.summary())
    for key in ("image_size", "crop_size"):  # what the network will be given
        size = cfg.data.get(key)
        if size is not None:
            sizes = [size, size] if isinstance(size, int) else list(size)
            try:
                check_input_size(net, sizes, f"data.{key}")
            except ValueError as err:
                raise ConfigError(str(err)) from err


def build_trainer(
    cfg: DictConfig,
    plan: JobPlan | None = None,
    provenance: Mapping[str, Any] | None = None,
) -> tuple:
    """(Lightning Trainer, its loggers) for `cfg`: the configured callbacks, plus the resolved
    config and `provenance` (None: this process's, `segkit.run.provenance`) in every
    checkpoint, the loggers, and the `plan`'s precision (None: the plan of `cfg`)."""
    from hydra.utils import instantiate

    from segkit.callbacks.checkpoint_entries import CheckpointEntries
    from segkit.run.config_checks import WANDB_LOGGER_TARGET
    from segkit.run.precision import trainer_precision

    plan = plan or plan_job(cfg)
    if provenance is None:
        from segkit.run.provenance import provenance as current_provenance

        provenance = current_provenance(plan.precision, plan.accelerator)
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    if cfg.trainer.get("enable_model_summary", True) and not cfg.get("verbose", False):
        from segkit.run.quiet import model_summary_callback

        callbacks.append(model_summary_callback())  # Lightning's, without its 0 FLOPs
    resolved = OmegaConf.to_container(cfg, resolve=True)
    callbacks.append(CheckpointEntries({CONFIG_KEY: resolved, PROVENANCE_KEY: dict(provenance)}))
    loggers = [
        # W&B shows the resolved config (passed as is: instantiate would build its _target_s).
        instantiate(c, _partial_=True)(run_config=resolved)
        if c.get("_target_") == WANDB_LOGGER_TARGET
        else instantiate(c)
        for c in (cfg.get("logger") or {}).values()
    ]
    trainer_cfg = OmegaConf.to_container(cfg.trainer, resolve=True)
    trainer_cfg.pop("on_nonfinite", None)  # segkit's key, given to the task (`build_task`)
    trainer_cfg.pop("precision", None)
    trainer = instantiate(
        trainer_cfg,
        callbacks=callbacks,
        logger=loggers or False,
        **trainer_precision(plan.precision, plan.accelerator),
    )
    return trainer, loggers


def inference_trainer(device: str, precision: str | int, root_dir: Path):
    """A one-device Trainer without loggers or checkpoints for eval; files a task writes (the
    instance task's ``predictions/``) go under `root_dir`."""
    import lightning as L

    from segkit.run.precision import trainer_precision

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
