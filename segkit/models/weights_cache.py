"""Pretrained weights come from local caches only: these checks fail at once, naming the file
to provide, instead of letting a library try (and retry) a download on a machine without
internet."""

from __future__ import annotations

import os
from pathlib import Path


class WeightsNotCachedError(FileNotFoundError):
    """Pretrained weights that are neither in the local cache nor given as a file."""


_LOCAL_FILE_HINT = (
    "or train from scratch (encoder_weights: null, the default), or give a local file: "
    "model.pretrained=/path/to/weights.{pth,safetensors} model.pretrained_target=encoder"
)


def require_torchvision_weights(arch: str, weights: str) -> Path:
    """Cached file of torchvision's `arch` weights `weights` ("DEFAULT", "IMAGENET1K_V1"...).

    Raises WeightsNotCachedError naming the URL and where to put the file.
    """
    import torchvision

    try:
        weights_enum = torchvision.models.get_model_weights(arch)
    except (ValueError, KeyError) as err:
        raise ValueError(f"torchvision has no model named {arch!r}") from err
    try:
        entry = weights_enum.verify(weights)
    except (ValueError, KeyError) as err:
        names = ", ".join(["DEFAULT", *weights_enum.__members__])
        raise ValueError(f"{arch} has no weights {weights!r}; available: {names}") from err
    path = _torch_hub_file(entry.url)
    if not path.is_file():
        raise WeightsNotCachedError(
            f"{arch} weights {weights!r} are not in the torch hub cache: expected {path}. "
            f"segkit never downloads at run time: fetch {entry.url} on a machine with internet "
            f"and copy it there (TORCH_HOME moves the cache), {_LOCAL_FILE_HINT}"
        )
    return path


def require_smp_encoder_weights(encoder_name: str, weights: str | bool) -> None:
    """Check that segmentation-models-pytorch will find `encoder_name`'s `weights` offline.

    smp encoders load from the Hugging Face hub cache (``smp-hub/<encoder>.<weights>``);
    ``tu-`` (timm) encoders from timm's hub repository or, failing that, the torch hub cache.
    """
    if encoder_name.startswith("tu-"):
        _require_timm_weights(encoder_name[3:])
        return
    # smp names its repositories smp-hub/<encoder>.<weights> ("+" as "-"). When nothing of the
    # repository is cached, say so before importing smp (seconds): the common offline case.
    repo_guess = f"smp-hub/{encoder_name}.{str(weights).replace('+', '-')}"
    if not _hf_repo_dir(repo_guess).is_dir():
        raise WeightsNotCachedError(_hf_message(f"{encoder_name} {weights!r}", repo_guess, None))
    from segmentation_models_pytorch.encoders import encoders

    if encoder_name not in encoders:
        raise ValueError(f"smp has no encoder named {encoder_name!r}")
    settings = encoders[encoder_name]["pretrained_settings"]
    if weights not in settings:
        raise ValueError(
            f"smp encoder {encoder_name} has no weights {weights!r}; available: "
            + ", ".join(settings)
        )
    repo, revision = settings[weights]["repo_id"], settings[weights]["revision"]
    for filename in ("config.json", "model.safetensors"):
        if not _in_hf_cache(repo, filename, revision):
            raise WeightsNotCachedError(_hf_message(f"{encoder_name} {weights!r}", repo, revision))


def _require_timm_weights(model_name: str) -> None:
    import timm

    cfg = timm.models.get_pretrained_cfg(model_name)
    if cfg is None:
        raise ValueError(f"timm has no pretrained weights for {model_name!r}")
    if cfg.hf_hub_id:
        files = (
            [cfg.hf_hub_filename]
            if cfg.hf_hub_filename
            else ["model.safetensors", "pytorch_model.bin"]
        )
        if any(_in_hf_cache(cfg.hf_hub_id, f, None) for f in files):
            return
    if cfg.url and _torch_hub_file(cfg.url).is_file():
        return
    if cfg.hf_hub_id:
        raise WeightsNotCachedError(_hf_message(f"timm {model_name}", cfg.hf_hub_id, None))
    raise WeightsNotCachedError(
        f"timm {model_name} weights are not cached: fetch {cfg.url} into "
        f"{_torch_hub_file(cfg.url).parent}, {_LOCAL_FILE_HINT}"
    )


def _torch_hub_file(url: str) -> Path:
    """Where `torch.hub.load_state_dict_from_url` keeps (and looks for) the file of `url`."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def _hf_repo_dir(repo: str) -> Path:
    from huggingface_hub.constants import HF_HUB_CACHE

    return Path(HF_HUB_CACHE) / f"models--{repo.replace('/', '--')}"


def _in_hf_cache(repo: str, filename: str, revision: str | None) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo, filename, revision=revision), str)


def _hf_message(what: str, repo: str, revision: str | None) -> str:
    from huggingface_hub.constants import HF_HUB_CACHE

    rev = f" --revision {revision}" if revision else ""
    return (
        f"{what} weights are not in the local Hugging Face cache ({HF_HUB_CACHE}). segkit "
        f"never downloads at run time: on a machine with internet run `hf download {repo}{rev}` "
        f"and copy {HF_HUB_CACHE}/models--{repo.replace('/', '--')} to this cache (HF_HOME moves "
        f"it), {_LOCAL_FILE_HINT}"
    )


def require_cached_net_weights(net_cfg) -> None:
    """Before building a network from its config: check that any smp encoder weights it asks
    for are cached (torchvision weights are checked by `TorchvisionSegmenter` itself)."""
    target = str(net_cfg.get("_target_", ""))
    weights = net_cfg.get("encoder_weights")
    if target.startswith("segmentation_models_pytorch.") and weights not in (None, False):
        require_smp_encoder_weights(str(net_cfg.get("encoder_name", "resnet34")), weights)
