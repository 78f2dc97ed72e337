"""Semantic inference beyond one forward pass: sliding windows and test-time augmentation.

Every function takes ``forward``: images float [B,C_in,h,w] -> logits [B,K,h,w] (a network in
eval mode, or a task's ``forward``) and returns logits or class scores [B,K,H,W] for the
whole image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

Forward = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class InferenceOptions:
    """How to predict a whole image (the ``inference`` config group).

    window, stride: sliding-window inference when ``window`` is set ([h, w] pixels; stride
        defaults to the window): windows cover the image (the last ones flush with its
        border; an image smaller than the window is padded), logits of overlapping windows
        are averaged.
    flip: add the horizontally flipped image (its prediction flipped back).
    scales: resize factors of the image; predictions are resized back and averaged.
    With flip or several scales, softmax scores are averaged (mmsegmentation's aug_test).
    ``scales`` and ``flip`` come from Hydra as ListConfig/bool; any sequence works.
    """

    window: Sequence[int] | None = None
    stride: Sequence[int] | None = None
    flip: bool = False
    scales: Sequence[float] = field(default_factory=lambda: [1.0])


def sliding_window_logits(
    forward: Forward, images: torch.Tensor, window: Sequence[int], stride: Sequence[int]
) -> torch.Tensor:
    """Logits [B,K,H,W] of `images` [B,C,H,W] from windows of size `window` every `stride`."""
    (wh, ww), (sh, sw) = window, stride
    if min(wh, ww, sh, sw) < 1:
        raise ValueError(f"window {list(window)} and stride {list(stride)} must be positive")
    height, width = images.shape[-2:]
    pad_h, pad_w = max(wh - height, 0), max(ww - width, 0)
    padded = F.pad(images, (0, pad_w, 0, pad_h)) if pad_h or pad_w else images
    full_h, full_w = padded.shape[-2:]
    summed: torch.Tensor | None = None
    counts = torch.zeros((1, 1, full_h, full_w), device=images.device)
    for top in _starts(full_h, wh, sh):
        for left in _starts(full_w, ww, sw):
            logits = forward(padded[..., top : top + wh, left : left + ww]).float()
            if summed is None:
                summed = logits.new_zeros((*logits.shape[:2], full_h, full_w))
            summed[..., top : top + wh, left : left + ww] += logits
            counts[..., top : top + wh, left : left + ww] += 1
    assert summed is not None
    return (summed / counts)[..., :height, :width]


def _starts(size: int, window: int, stride: int) -> list[int]:
    """Window offsets covering [0, size): every `stride`, the last one flush with the end."""
    starts = list(range(0, max(size - window, 0) + 1, stride))
    if starts[-1] + window < size:
        starts.append(size - window)
    return starts


def predict_scores(
    forward: Forward, images: torch.Tensor, options: InferenceOptions
) -> torch.Tensor:
    """Logits [B,K,H,W] of `images` [B,C,H,W]. With flip or several scales: the log of the
    mean softmax, so argmax, softmax and cross-entropy read them like logits."""

    def whole(x: torch.Tensor) -> torch.Tensor:
        if options.window is None:
            return forward(x).float()
        return sliding_window_logits(forward, x, options.window, options.stride or options.window)

    scales = list(options.scales)
    if not options.flip and scales == [1.0]:
        return whole(images)
    size = images.shape[-2:]
    total: torch.Tensor | None = None
    for scale in scales:
        x = images
        if scale != 1.0:
            x = F.interpolate(images, scale_factor=scale, mode="bilinear", align_corners=False)
        for flipped in (False, True) if options.flip else (False,):
            out = whole(x.flip(-1) if flipped else x)
            out = out.flip(-1) if flipped else out
            if out.shape[-2:] != size:
                out = F.interpolate(out, size=size, mode="bilinear", align_corners=False)
            probs = out.softmax(1)
            total = probs if total is None else total + probs
    assert total is not None
    return (total / (len(scales) * (2 if options.flip else 1))).clamp_min(1e-12).log()


def at_label_size(logits: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Logits [B,K,h,w] resized (bilinear) to the labels' [H,W] when they differ: evaluation
    scores at label resolution, also for a model that sees downscaled images (mmsegmentation
    resizes predictions to the original image alike)."""
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits.float(), size=tuple(size), mode="bilinear", align_corners=False)


def padded_logits(task, images, divisor: int):
    """`task.predict_logits` of images of any size: padded bottom/right to the network's size
    `divisor` (`segkit.models.input_size.input_size_divisor`), logits cropped back to [B,K,H,W]."""
    import torch.nn.functional as F

    height, width = images.shape[-2:]
    pad_h, pad_w = -height % divisor, -width % divisor
    if pad_h or pad_w:
        images = F.pad(images, (0, pad_w, 0, pad_h))
    return task.predict_logits(images)[..., :height, :width]
