"""Which input sizes a network accepts, checked before training starts."""

from __future__ import annotations

from torch import nn


def input_size_divisor(net: nn.Module) -> int:
    """What input height and width must be multiples of (1: any size).

    smp networks that refuse other sizes say so with ``requires_divisible_input_shape``; their
    encoder's output stride is then the divisor (32 for most, 8 or 16 for dilated DeepLab and
    PSPNet encoders). smp's U-Net and torchvision models resize internally and take any size.
    """
    if getattr(net, "requires_divisible_input_shape", False):
        return int(net.encoder.output_stride)
    return 1


def check_input_size(net: nn.Module, sizes: list[int], key: str) -> None:
    """Raise ValueError naming `key`, the size and the nearest valid sizes if `net` refuses it."""
    divisor = input_size_divisor(net)
    for size in sizes:
        if size % divisor:
            below = size // divisor * divisor
            nearest = [s for s in (below, below + divisor) if s > 0]
            raise ValueError(
                f"{key}={size} is not accepted by {type(net).__name__}: height and width must "
                f"be multiples of {divisor} (its encoder's output stride); nearest valid sizes: "
                + ", ".join(map(str, nearest))
            )
