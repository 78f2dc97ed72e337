"""Parameters a network holds but its forward never uses, frozen before training: DDP stops a
run whose parameters get no gradient (unless it searches for them every step, which costs)."""

from __future__ import annotations

from torch import nn


def freeze_unused_encoder_head(net: nn.Module) -> list[str]:
    """Freeze what smp's timm EfficientNet encoders keep of timm's classifier path:
    ``conv_head`` and ``bn2`` (1280 channels for the head), which their forward never runs.
    Their tensors stay in the state dict (pretrained files and checkpoints load as before) and
    out of the optimizer. Returns the frozen parameters' names."""
    encoder = getattr(net, "encoder", None)
    if not (_is_smp_efficientnet(encoder) and hasattr(encoder, "conv_head")):
        return []
    frozen = []
    for name in ("conv_head", "bn2"):
        for param_name, param in getattr(encoder, name).named_parameters():
            param.requires_grad_(False)
            frozen.append(f"encoder.{name}.{param_name}")
    return frozen


def _is_smp_efficientnet(encoder: object) -> bool:
    return any(
        cls.__module__ == "segmentation_models_pytorch.encoders.timm_efficientnet"
        for cls in type(encoder).__mro__
    )
