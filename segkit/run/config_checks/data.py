"""Checks of the ``data`` group: roots, sizes and counts, domain pairs against the model, and
the strong views consistency methods need."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from segkit.run.config_checks.common import ConfigError, positive_int
from segkit.run.config_checks.model import method_class, preset_name
from segkit.run.facts import is_domain_pair, task_family


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
    positive_int(data, "data", "batch_size")
    positive_int(data, "data", "num_classes")
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
