"""Optimizers with segmentation's parameter groups, and per-iteration schedules with warm-up."""

from __future__ import annotations

import math
from typing import Any

import torch
from hydra.utils import get_class
from torch import nn


def param_groups(
    model: nn.Module, weight_decay: float, encoder_lr_mult: float = 1.0, lr: float | None = None
) -> list[dict[str, Any]]:
    """Split `model`'s trainable parameters into named groups.

    - ``encoder`` / ``decoder``: the encoder (``model.encoder``, as smp and
      `TorchvisionSegmenter` name it) gets ``lr * encoder_lr_mult``, as when fine-tuning a
      pretrained backbone; everything else is "decoder" (decoder, heads).
    - ``*_no_decay``: biases and normalisation weights (every tensor with fewer than 2
      dimensions) get no weight decay, as in the usual recipes (decaying them only hurts).
    Empty groups are left out.
    """
    encoder = getattr(model, "encoder", None)
    if encoder_lr_mult != 1.0 and encoder is None:
        raise ValueError(
            f"encoder_lr_mult={encoder_lr_mult} needs a model with an .encoder; "
            f"{type(model).__name__} has none"
        )
    encoder_ids = {id(p) for p in encoder.parameters()} if encoder is not None else set()
    groups: dict[str, dict[str, Any]] = {}
    for param in model.parameters():
        if not param.requires_grad:
            continue
        part = "encoder" if id(param) in encoder_ids else "decoder"
        no_decay = param.ndim <= 1
        name = part + ("_no_decay" if no_decay else "")
        if name not in groups:
            group: dict[str, Any] = {
                "name": name,
                "params": [],
                "weight_decay": 0.0 if no_decay else weight_decay,
            }
            if lr is not None:
                group["lr"] = lr * (encoder_lr_mult if part == "encoder" else 1.0)
            groups[name] = group
        groups[name]["params"].append(param)
    return list(groups.values())


def build_optimizer(
    model: nn.Module,
    optimizer: str = "torch.optim.AdamW",
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    encoder_lr_mult: float = 1.0,
    **kwargs: Any,
) -> torch.optim.Optimizer:
    """Build `optimizer` (a dotted class path) over `param_groups(model, ...)`.

    Extra keyword arguments go to the optimizer (``momentum``, ``betas``, ``fused``...).
    Used in configs as ``_target_: segkit.optim.build_optimizer`` with ``_partial_: true``;
    tasks call the partial with ``model=``.
    """
    cls = get_class(optimizer)
    return cls(param_groups(model, weight_decay, encoder_lr_mult, lr), lr=lr, **kwargs)


def _warmup_factor(step: int, warmup_iters: int, warmup_ratio: float) -> float | None:
    if step < warmup_iters:
        return warmup_ratio + (1.0 - warmup_ratio) * step / warmup_iters
    return None


def poly_with_warmup(
    optimizer: torch.optim.Optimizer,
    total_iters: int,
    power: float = 0.9,
    warmup_iters: int = 0,
    warmup_ratio: float = 1e-6,
    min_lr_ratio: float = 0.0,
) -> torch.optim.lr_scheduler.LambdaLR:
    """Polynomial decay ``(1 - t/T)^power`` (DeepLab) after a linear warm-up from
    ``warmup_ratio * lr`` over `warmup_iters` steps; never below ``min_lr_ratio * lr``.
    Every parameter group keeps its own base learning rate."""

    def factor(step: int) -> float:
        warm = _warmup_factor(step, warmup_iters, warmup_ratio)
        if warm is not None:
            return warm
        progress = min(step, total_iters) / max(1, total_iters)
        return max(min_lr_ratio, (1.0 - progress) ** power)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def cosine_with_warmup(
    optimizer: torch.optim.Optimizer,
    total_iters: int,
    warmup_iters: int = 0,
    warmup_ratio: float = 1e-6,
    min_lr_ratio: float = 0.0,
) -> torch.optim.lr_scheduler.LambdaLR:
    """Cosine decay to ``min_lr_ratio * lr`` after a linear warm-up of `warmup_iters` steps."""

    def factor(step: int) -> float:
        warm = _warmup_factor(step, warmup_iters, warmup_ratio)
        if warm is not None:
            return warm
        span = max(1, total_iters - warmup_iters)
        progress = min(1.0, (step - warmup_iters) / span)
        return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
