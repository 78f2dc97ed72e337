"""Loading weights from a local file into a network or its encoder, with a key report.

Accepts ``.safetensors``, plain state-dict ``.pth``/``.pt``/``.bin`` files (torchvision, timm,
smp), torchvision reference checkpoints (``{"model": state_dict}``), Lightning/segkit
checkpoints (``{"state_dict": ...}``, keys prefixed ``net.``) and weights inside an installed
package (``package:<module>``, `segkit.models.packaged_weights`). EfficientNets in lukemelas'
layout load into smp's timm-efficientnet encoders (`segkit.models.efficientnet_keys`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from segkit.models.efficientnet_keys import (
    is_lukemelas_efficientnet,
    timm_stage_lengths,
    to_timm_efficientnet,
)
from segkit.models.packaged_weights import is_packaged, packaged_weights_file
from segkit.models.torch_files import load_torch_file

log = logging.getLogger(__name__)

TARGETS = ("auto", "net", "encoder")
_WRAPPER_PREFIXES = ("net.", "module.", "_orig_mod.")


@dataclass
class LoadReport:
    """What `load_pretrained` did: which tensors were loaded and which were not."""

    path: str
    target: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # in the model, not in the file
    unexpected: list[str] = field(default_factory=list)  # in the file, not in the model
    mismatched: list[str] = field(default_factory=list)  # same name, other shape: not loaded

    def summary(self) -> str:
        lines = [f"loaded {len(self.loaded)} tensors from {self.path} into the {self.target}"]
        for name, keys in (
            ("missing from the file (left as initialised)", self.missing),
            ("unexpected (in the file only, ignored)", self.unexpected),
            ("shape mismatch (left as initialised)", self.mismatched),
        ):
            if keys:
                shown = ", ".join(keys[:8]) + (
                    f", ... ({len(keys) - 8} more)" if len(keys) > 8 else ""
                )
                lines.append(f"  {len(keys)} {name}: {shown}")
        return "\n".join(lines)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a weights file, unwrapped from checkpoint containers."""
    if is_packaged(path):
        path = packaged_weights_file(str(path))
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights file {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            state = load_file(str(path), device="cpu")
        except Exception as err:
            raise ValueError(f"{path}: not a readable .safetensors file ({err})") from err
    else:  # refuses pickled code and names a file that is no PyTorch file at all
        state = load_torch_file(path, "weights file")
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not state:
        raise ValueError(f"{path} holds no state dict of tensors")
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    for prefix in _WRAPPER_PREFIXES:
        if tensors and all(k.startswith(prefix) for k in tensors):
            tensors = {k[len(prefix) :]: v for k, v in tensors.items()}
    return tensors


def encoder_prefix(net: nn.Module) -> str | None:
    """Key prefix of the network's encoder in its state dict ("encoder." for smp,
    "model.backbone." for torchvision models), or None without an encoder."""
    encoder = getattr(net, "encoder", None)
    if encoder is None:
        return None
    for name, module in net.named_modules():
        if module is encoder and name:
            return name + "."
    return None


def load_pretrained(
    net: nn.Module, path: str | Path, strict: bool = False, target: str = "auto"
) -> LoadReport:
    """Load the tensors of `path` into `net` (target "net") or its encoder ("encoder").

    "auto" picks whichever the file's keys match best, so both an ImageNet backbone file and a
    whole-network checkpoint load without settings. A whole-network file loads into the
    encoder alone with target "encoder" (fine-tuning on other classes: the head stays
    freshly initialised); tensors whose shape differs (a head for another class count) are
    never loaded.

    strict: raise ValueError when any key is missing, unexpected or of another shape, instead
    of loading the rest and reporting them.
    """
    if target not in TARGETS:
        raise ValueError(f"pretrained target {target!r} is invalid: expected one of {TARGETS}")
    state = read_state_dict(path)
    prefix = encoder_prefix(net)
    if is_lukemelas_efficientnet(state):
        state = _for_timm_encoder(state, getattr(net, "encoder", None), path)
    if target in ("encoder", "auto") and prefix and any(k.startswith(prefix) for k in state):
        # A whole-network file: its encoder part is what an encoder target receives.
        encoder_state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    else:
        encoder_state = state
    candidates = {"net": (net, state)}
    if prefix:
        candidates["encoder"] = (net.encoder, encoder_state)
    elif target == "encoder":
        raise ValueError(f"{type(net).__name__} has no .encoder to load {path} into")
    if target == "auto":
        # Ties go to the whole network (listed first).
        target = max(candidates, key=lambda t: _matches(*candidates[t]))
    module, tensors = candidates[target]
    if _matches(module, tensors) == 0:
        raise ValueError(
            f"no tensor in {path} matches the {target} by name: file keys start "
            f"{sorted(tensors)[:3]}, expected keys like {sorted(module.state_dict())[:3]}"
        )
    report = _load(module, tensors, str(path), target, strict)
    log.info(report.summary())
    return report


def _for_timm_encoder(state: dict, encoder: nn.Module | None, path) -> dict[str, torch.Tensor]:
    """A lukemelas-layout EfficientNet renamed for `encoder`: smp's ``timm-efficientnet-*``
    encoders (a timm EfficientNet) or ``tu-*`` ones (one under ``.model``). The file's
    classification head (``conv_head``, ``bn2``, ``classifier``) is left out where the encoder
    has none (smp deletes the classifier; ``tu-`` feature extractors end at the last block)."""
    prefix, timm_net = "", encoder
    if timm_stage_lengths(timm_net) is None and encoder is not None:
        prefix, timm_net = "model.", getattr(encoder, "model", None)
    lengths = timm_stage_lengths(timm_net)
    if lengths is None:
        raise ValueError(
            f"{path} holds an EfficientNet in lukemelas' layout: it loads into smp's timm "
            "EfficientNet encoders (e.g. model.net.encoder_name=timm-tf_efficientnet_lite0), "
            f"not into {type(encoder).__name__ if encoder is not None else 'a network without one'}"
        )
    own = timm_net.state_dict()
    renamed = to_timm_efficientnet(state, lengths)
    head = ("conv_head.", "bn2.", "classifier.")
    return {prefix + k: v for k, v in renamed.items() if k in own or not k.startswith(head)}


def _matches(module: nn.Module, tensors: dict[str, torch.Tensor]) -> int:
    own = module.state_dict()
    return sum(1 for k, v in tensors.items() if k in own and own[k].shape == v.shape)


def _load(module: nn.Module, tensors: dict, path: str, target: str, strict: bool) -> LoadReport:
    own = module.state_dict()
    report = LoadReport(path=path, target=target)
    report.mismatched = [
        f"{k} {list(v.shape)} (model {list(own[k].shape)})"
        for k, v in tensors.items()
        if k in own and own[k].shape != v.shape
    ]
    loadable = {k: v for k, v in tensors.items() if k in own and own[k].shape == v.shape}
    report.missing = [k for k in own if k not in loadable and k not in tensors]
    report.unexpected = [k for k in tensors if k not in own]
    report.loaded = list(loadable)
    if strict and (report.missing or report.unexpected or report.mismatched):
        raise ValueError(f"strict loading failed:\n{report.summary()}")
    module.load_state_dict(loadable, strict=False)
    return report
