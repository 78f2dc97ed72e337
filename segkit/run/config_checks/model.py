"""Checks of the ``model`` group: the method object and what it needs, pretrained weights."""

from __future__ import annotations

from omegaconf import DictConfig

from segkit.run.config_checks.common import ConfigError


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
