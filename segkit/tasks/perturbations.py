"""The random perturbations of a training step, drawn from that step's own generator
(`step_generator`) so that a resumed run repeats them: CutMix boxes (Yun et al. 2019, as in
UniMatch) and channel dropout on encoder features (UniMatch's feature perturbation)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn


def step_generator(step: int, rank: int = 0) -> torch.Generator:
    """The CPU generator of one training step's draws (CutMix boxes, feature dropout): seeded
    from the run's seed (``PL_GLOBAL_SEED``), the step and the DDP rank only, so a resumed run
    draws what the uninterrupted one did, whatever else used torch's global RNG meanwhile (data
    loaders draw from it when they start), on any device."""
    seed = int(os.environ.get("PL_GLOBAL_SEED", 0))
    return torch.Generator().manual_seed((seed * 1_000_003 + step * 7_919 + rank * 104_729) % 2**63)


def cutmix_boxes(
    batch: int,
    height: int,
    width: int,
    prob: float,
    device: torch.device | str = "cpu",
    area: tuple[float, float] = (0.02, 0.4),
    ratio: tuple[float, float] = (0.3, 1 / 0.3),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """bool [B,H,W]: for each image, with probability `prob`, one box of `area` (fraction of
    the image) and aspect `ratio` drawn uniformly, as in UniMatch; all false otherwise. Drawn
    on the CPU from `generator` (default: torch's global RNG), so a run repeats on any device."""
    boxes = torch.zeros(batch, height, width, dtype=torch.bool)
    draws = torch.rand(batch, 5, generator=generator)
    for i in range(batch):
        if draws[i, 0] >= prob:
            continue
        size = (area[0] + (area[1] - area[0]) * draws[i, 1]) * height * width
        aspect = ratio[0] + (ratio[1] - ratio[0]) * draws[i, 2]
        box_w = min(width, max(1, int((size / aspect).sqrt())))
        box_h = min(height, max(1, int((size * aspect).sqrt())))
        top = int(draws[i, 3] * (height - box_h + 1))
        left = int(draws[i, 4] * (width - box_w + 1))
        boxes[i, top : top + box_h, left : left + box_w] = True
    return boxes.to(device)


def mix(values: torch.Tensor, boxes: torch.Tensor, partner: torch.Tensor) -> torch.Tensor:
    """`values` [B,...,H,W] with image i taking the `partner` batch's image i values inside
    its box (``boxes`` bool [B,H,W]); any dims between batch and the spatial ones are mixed
    alike."""
    if partner.shape != values.shape:
        raise ValueError(
            f"the CutMix partner batch {tuple(partner.shape)} differs from the unlabeled batch "
            f"{tuple(values.shape)}"
        )
    inside = boxes.view(boxes.shape[0], *([1] * (values.ndim - 3)), *boxes.shape[1:])
    return torch.where(inside, partner, values)


@contextlib.contextmanager
def feature_dropout(
    net: nn.Module, p: float, generator: torch.Generator | None = None
) -> Iterator[None]:
    """While active, channel dropout (as ``nn.Dropout2d``: whole channels zeroed with
    probability `p`, the rest scaled by 1/(1-p)) on every 4-D feature map ``net.encoder``
    outputs (a tensor, or a list/tuple/dict of them): smp models and
    `segkit.models.torchvision_segmenter.TorchvisionSegmenter` have one. The channel masks are
    drawn on the CPU from `generator` (default: torch's global RNG)."""
    encoder = getattr(net, "encoder", None)
    if not isinstance(encoder, nn.Module):
        raise TypeError(
            f"{type(net).__name__} has no `encoder` module: UniMatch's feature perturbation "
            "(model.consistency.fp_weight > 0) needs one (smp and torchvision segmenters have it)"
        )

    def channel_dropout(t: torch.Tensor) -> torch.Tensor:
        if t.ndim != 4 or p == 0.0:
            return t
        keep = torch.rand(t.shape[0], t.shape[1], 1, 1, generator=generator) >= p
        scale = keep.to(device=t.device, dtype=t.dtype) / (1.0 - p)
        return t * scale

    def drop(module: nn.Module, inputs: Any, output: Any) -> Any:
        return _map_tensors(output, channel_dropout)

    handle = encoder.register_forward_hook(drop)
    try:
        yield
    finally:
        handle.remove()


def _map_tensors(value: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, dict):
        return type(value)((k, _map_tensors(v, fn)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(_map_tensors(v, fn) for v in value)
    return value
