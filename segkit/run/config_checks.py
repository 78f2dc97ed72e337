"""Checks of a composed config that run before torch is imported, so a bad value costs
a second, not a training start. Each failure is one line naming the key, the value and what
is accepted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from segkit.run.facts import is_domain_pair, num_classes, task_family


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key and the accepted values."""


def check_data_config(cfg: DictConfig) -> None:
    """Raise `ConfigError` for the first invalid value found in ``cfg.data``."""
    data = cfg.data
    _check_root(data, "data")
    if is_domain_pair(data):
        _check_root(data.source, "data.source")
        _check_root(data.target, "data.target")
    listed = data.get("labeled_list")
    if listed is not None and not Path(str(listed)).expanduser().is_file():
        raise ConfigError(f"data.labeled_list={listed} is not a file")
    _positive_int(data, "data", "batch_size")
    _positive_int(data, "data", "num_classes")
    num_classes = data.num_classes
    if num_classes < 2:
        raise ConfigError(f"data.num_classes={num_classes} is invalid: expected at least 2")
    for key in ("class_names", "palette"):
        values = data.get(key)
        if values is not None and len(values) != num_classes:
            raise ConfigError(
                f"data.{key} has {len(values)} entries but data.num_classes={num_classes}: "
                "expected one per class"
            )


def _check_root(data: DictConfig, prefix: str) -> None:
    if "root" in data.keys():  # noqa: SIM118 (`in data` is False for a missing value)
        if OmegaConf.is_missing(data, "root"):
            raise ConfigError(
                f"{prefix}.root is required for data={data._target_.rsplit('.', 1)[-1]}: "
                "give the dataset folder, e.g. data.root=/datasets/cityscapes"
            )
        if not Path(str(data.root)).expanduser().is_dir():
            raise ConfigError(f"{prefix}.root={data.root} is not a folder")


def check_domain_adaptation(cfg: DictConfig) -> None:
    """ConfigError unless domain-adaptation models train on a domain pair whose label spaces
    agree (or are mapped), and other models on one domain."""
    data, family = cfg.data, task_family(cfg)
    if family != "adaptation":
        if is_domain_pair(data):
            raise ConfigError(
                "this data config pairs a source and a target domain: train it with model=adapt "
                "(one domain alone, e.g. the target's oracle: data=synthetic_shifted)"
            )
        return
    if not is_domain_pair(data):
        raise ConfigError(
            "model=adapt learns from a labeled source and an unlabeled target domain: choose a "
            "domain pair data config (data=synthetic_shift, data=gta5_cityscapes, "
            "data=synthia_cityscapes)"
        )
    from segkit.data.label_spaces import check_pair_label_spaces

    def mapping(key: str) -> dict[int, int] | None:
        table = data.get(key)
        return {int(k): int(v) for k, v in table.items()} if table else None

    target_classes = list(data.target.get("class_names") or [])
    try:
        check_pair_label_spaces(
            list(data.get("source_classes") or data.source.get("class_names") or []),
            target_classes,
            list(data.get("class_names") or target_classes),
            mapping("label_mapping"),
            mapping("target_label_mapping"),
            data.get("ignore_index", 255),
        )
    except ValueError as err:
        raise ConfigError(str(err)) from err
    method = method_class(cfg.model)
    needs_discriminator = method.needs_discriminator
    if needs_discriminator != (cfg.model.get("discriminator") is not None):
        raise ConfigError(
            f"model.method {method.__name__} "
            + ("needs a" if needs_discriminator else "trains no")
            + f" discriminator: choose the method's preset, model/method={preset_name(method)}"
        )


def method_class(model: DictConfig) -> type:
    """The class of ``model.method`` (a `segkit.tasks.methods` object's config), which
    declares what the method needs; importing it imports torch, which the run needs next."""
    from hydra.utils import get_class

    method = model.get("method")
    target = method.get("_target_") if isinstance(method, DictConfig) else None
    if not target:
        raise ConfigError(
            f"model.method={method!r} is invalid: expected a method config with a _target_ "
            "(a model/method preset, docs/domain_adaptation.md)"
        )
    try:
        return get_class(str(target))
    except Exception as err:
        raise ConfigError(f"model.method._target_={target}: {err}") from err


def preset_name(method: type) -> str:
    """The ``model/method`` preset of a method class: its module's name
    (``segkit.tasks.methods.dacs.DACS`` -> ``dacs``)."""
    return method.__module__.rsplit(".", 1)[-1]


def check_train_config(cfg: DictConfig) -> None:
    """Raise `ConfigError` for the first invalid value found in a training config."""
    check_data_config(cfg)
    data, model = cfg.data, cfg.model
    task = data.get("task", "semantic")
    family = task_family(cfg)
    classes = num_classes(data, family)
    net = model.get("net")
    for key, node, name in (
        ("model.num_classes", model, "num_classes"),
        ("model.net.classes", net or {}, "classes"),
        ("model.net.num_classes", net or {}, "num_classes"),
        ("model.discriminator.num_classes", model.get("discriminator") or {}, "num_classes"),
    ):
        if name in node and node[name] != classes:
            raise ConfigError(
                f"{key}={node[name]} differs from the data's {classes} classes: "
                "leave it as configured (from the data config) or change both"
            )
    semantic_model = family != "instance"
    if semantic_model and not cfg.get("loss"):
        raise ConfigError("loss=none: semantic models need a loss (e.g. loss=ce)")
    if task == "instance" and semantic_model:
        raise ConfigError(
            f"data={data._target_.rsplit('.', 1)[-1]} with data.task=instance gives instance "
            "samples, which semantic models cannot train on: use an instance model, or "
            "data.task=semantic where the dataset has it"
        )
    if family == "adversarial":
        check_method_discriminator(model)
    check_pretrained(model)
    check_domain_adaptation(cfg)
    if model.get("consistency") is not None:
        check_consistency_data(data)
    if family in ("adversarial", "adaptation") and cfg.trainer.get("gradient_clip_val"):
        raise ConfigError(
            f"trainer.gradient_clip_val={cfg.trainer.gradient_clip_val}: Lightning does not clip "
            f"for {family} models (manual optimization); set model.gradient_clip_val instead"
        )
    check_trainer_config(cfg.trainer)
    check_logger_config(cfg.get("logger") or {})
    for key in ("limit_train_batches", "max_steps"):
        # Evaluating without training is fine; a schedule over 0 steps fails inside PyTorch.
        if cfg.trainer.get(key) == 0 and cfg.get("scheduler"):
            raise ConfigError(
                f"trainer.{key}=0 with a learning-rate schedule: it needs at least one step "
                "(add scheduler=none to evaluate without training)"
            )


def check_pretrained(model: DictConfig) -> None:
    """ConfigError when ``model.pretrained`` names packaged weights (``package:<module>``)
    that are not installed, with the pip command."""
    from segkit.models.packaged_weights import (
        PackagedWeightsError,
        is_packaged,
        packaged_weights_file,
    )

    spec = model.get("pretrained")
    if is_packaged(spec):
        try:
            packaged_weights_file(spec)
        except PackagedWeightsError as err:
            raise ConfigError(str(err)) from err


#: What builds the W&B logger in ``conf/logger`` (found by target, whatever its key).
WANDB_LOGGER_TARGET = "segkit.tracking.wandb_logger.wandb_logger"


def wandb_logger_config(logger: DictConfig) -> DictConfig | None:
    """The entry of the ``logger`` group that builds the W&B logger, if the run has one."""
    for node in logger.values():
        if node.get("_target_") == WANDB_LOGGER_TARGET:
            return node
    return None


#: segkit's TensorBoard logger (needs tensorboardX or tensorboard: the tensorboard extra).
TENSORBOARD_LOGGER_TARGET = "segkit.tracking.tensorboard_logger.TensorBoardLogger"


def require_extra(extra: str, modules: tuple[str, ...], purpose: str) -> None:
    """ConfigError naming the extra to install when one of `modules` cannot be imported."""
    missing = []
    for module in modules:
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ConfigError(
            f"{purpose} needs {', '.join(missing)} (not installed): pip install 'segkit[{extra}]'"
        )


def check_logger_config(logger: DictConfig) -> None:
    """Raise `ConfigError` for a W&B mode or log_model value wandb would reject mid-run, and
    for a TensorBoard logger without its package."""
    from segkit.tracking.wandb_mode import MODES

    targets = [str(node.get("_target_", "")) for node in logger.values()]
    if any(target.endswith(".TensorBoardLogger") for target in targets):  # Lightning's or ours
        try:  # Lightning writes event files with either package
            __import__("tensorboard")
        except ImportError:
            require_extra("tensorboard", ("tensorboardX",), "logger=tensorboard")

    wandb = wandb_logger_config(logger) or {}
    if "mode" in wandb and wandb.mode not in MODES:
        raise ConfigError(
            f"logger.wandb.mode={wandb.mode!r} is invalid: expected one of {', '.join(MODES)}"
        )
    if wandb.get("log_model") not in (None, True, False, "all"):
        raise ConfigError(
            f"logger.wandb.log_model={wandb.log_model!r} is invalid: expected false, true or all"
        )


def check_method_discriminator(model: DictConfig) -> None:
    """ConfigError for an adversarial method paired with a discriminator it cannot train with
    (e.g. Hung et al.'s self-training, which reads a per-pixel confidence map, with luc2016's
    image-level discriminator): the method class says whether it needs a per-pixel one, the
    discriminator class whether it is (``per_pixel``)."""
    from hydra.utils import get_class

    method = method_class(model)
    target = (model.get("discriminator") or {}).get("_target_")
    if not getattr(method, "per_pixel_discriminator", False) or not target:
        return
    try:
        per_pixel = getattr(get_class(str(target)), "per_pixel", None)
    except Exception:  # instantiation names a missing class with its config key
        return
    if per_pixel is False:
        raise ConfigError(
            f"model.method {method.__name__} needs a per-pixel discriminator (a confidence map "
            f"of the label map's size), not model.discriminator {str(target).rsplit('.', 1)[-1]}: "
            f"choose the method's preset, model/method={preset_name(method)}, "
            "which sets its discriminator and loss weights together"
        )


def check_consistency_data(data: DictConfig) -> None:
    """ConfigError for a weak-to-strong consistency model (model=semi) on data without
    unlabeled images or without their strong views."""
    if data.get("labeled_fraction", 1.0) >= 1.0 and data.get("labeled_list") is None:
        raise ConfigError(
            "model.consistency learns from unlabeled images: set data.labeled_fraction < 1 "
            "or data.labeled_list (the supervised baseline on the same split is model=unet...)"
        )
    if not data.get("strong_views") or data.get("strong_transform") is None:
        raise ConfigError(
            f"model.consistency needs strong views of the unlabeled images: data.strong_views="
            f"{data.get('strong_views')} with data.strong_transform (the model/method presets "
            "set both)"
        )


#: What Lightning's Trainer takes (its `precision`, `accelerator` and `strategy` names), plus
#: segkit's "auto" precision; checked here so a typo fails in a second, naming the key.
PRECISIONS = (
    "auto", "32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true",
    "transformer-engine", "transformer-engine-float16", "32", "16", "bf16", "64", 32, 16, 64,
)  # fmt: skip
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")
#: Strategy names of Lightning's registry (``ddp*``, ``deepspeed*``, ``fsdp*``, ``xla*``...).
STRATEGY_PREFIXES = ("auto", "ddp", "deepspeed", "fsdp", "single_device", "single_tpu",
                     "single_xla", "xla")  # fmt: skip


def check_trainer_options(trainer: DictConfig) -> None:
    """ConfigError for a ``precision``, ``accelerator``, ``devices`` or ``strategy`` the
    Trainer would refuse once built, naming the key and what it takes."""
    precision = trainer.get("precision", "auto")
    if precision not in PRECISIONS:
        shown = ", ".join(p for p in PRECISIONS if isinstance(p, str) and not p.isdigit())
        raise ConfigError(f"trainer.precision={precision!r} is invalid: expected one of {shown}")
    accelerator = trainer.get("accelerator", "auto")
    if accelerator not in ACCELERATORS:
        raise ConfigError(
            f"trainer.accelerator={accelerator!r} is invalid: expected one of "
            f"{', '.join(ACCELERATORS)}"
        )
    devices = trainer.get("devices", "auto")
    if not _valid_devices(devices):
        raise ConfigError(
            f"trainer.devices={devices!r} is invalid: expected auto, a positive count, -1 (all), "
            "or a list of device indices such as [0,1]"
        )
    strategy = trainer.get("strategy", "auto")
    if isinstance(strategy, str) and not strategy.startswith(STRATEGY_PREFIXES):
        raise ConfigError(
            f"trainer.strategy={strategy!r} is invalid: expected auto, ddp (ddp_spawn, "
            "ddp_find_unused_parameters_true, ...), fsdp, deepspeed, or a strategy config "
            "with a _target_ (trainer=ddp)"
        )


def _valid_devices(devices: Any) -> bool:
    """Lightning's ``devices``: "auto", a count >= 1, -1, "0,1", or a list of indices."""
    if OmegaConf.is_list(devices) or isinstance(devices, list):
        return len(devices) > 0 and all(isinstance(d, int) and d >= 0 for d in devices)
    if isinstance(devices, bool):
        return False
    if isinstance(devices, int):
        return devices >= 1 or devices == -1
    if isinstance(devices, str):
        parts = [p.strip() for p in devices.split(",") if p.strip()]
        return devices == "auto" or (bool(parts) and all(p.lstrip("-").isdigit() for p in parts))
    return False


def check_trainer_config(trainer: DictConfig) -> None:
    """Raise `ConfigError` for trainer settings Lightning would reject only once running."""
    check_trainer_options(trainer)
    max_epochs = trainer.get("max_epochs")
    if max_epochs is not None and not (max_epochs == -1 or max_epochs >= 1):
        raise ConfigError(
            f"trainer.max_epochs={max_epochs} is invalid: expected a positive integer or -1"
        )
    _positive_int(trainer, "trainer", "num_nodes")
    if trainer.get("on_nonfinite", "error") not in ("error", "skip"):
        raise ConfigError(
            f"trainer.on_nonfinite={trainer.on_nonfinite!r} is invalid: expected error or skip"
        )
    if trainer.get("sync_batchnorm") and trainer.get("accelerator") == "cpu":
        raise ConfigError(
            "trainer.sync_batchnorm=true with trainer.accelerator=cpu: PyTorch's SyncBatchNorm "
            "runs on GPUs only; set trainer.sync_batchnorm=false for CPU training"
        )


def _positive_int(node: DictConfig, prefix: str, key: str) -> None:
    value = node.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{prefix}.{key}={value!r} is invalid: expected a positive integer")


def check_required(cfg: DictConfig, *keys: str) -> None:
    """ConfigError naming the first of `keys` left at ``???`` (before anything heavy runs)."""
    for key in keys:
        if OmegaConf.is_missing(cfg, key):
            raise ConfigError(f"{key}=... is required (e.g. {key}={_EXAMPLES.get(key, 'VALUE')})")


_EXAMPLES = {
    "ckpt_path": "outputs/<date>/<run>/checkpoints/best.ckpt",
    "input": "IMAGE_OR_DIR",
    "output": "DIR",
}
