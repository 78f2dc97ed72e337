"""EfficientNet state dicts in the layout of lukemelas' EfficientNet-PyTorch (and the Lite forks
that copy it: ``_conv_stem``, ``_blocks.<n>._depthwise_conv``, ...) renamed to timm's
EfficientNet, the layout of segmentation-models-pytorch's ``timm-efficientnet-*`` and
``timm-tf_efficientnet_lite*`` encoders (``conv_stem``, ``blocks.<stage>.<i>.conv_dw``, ...).

The two number blocks differently (one flat list against stages of blocks), so the renaming
reads the stage lengths off the encoder it is for; block kinds follow the file (a block with an
``_expand_conv`` is an inverted residual, one without a depthwise-separable block).
"""

from __future__ import annotations

import re

import torch
from torch import nn

_TOP = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}
_SQUEEZE_EXCITE = {"_se_reduce": "se.conv_reduce", "_se_expand": "se.conv_expand"}
#: Blocks without an expansion (expand ratio 1): timm's DepthwiseSeparableConv.
_SEPARABLE = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
    **_SQUEEZE_EXCITE,
}
#: Blocks with an expansion: timm's InvertedResidual.
_INVERTED_RESIDUAL = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
    **_SQUEEZE_EXCITE,
}
_BLOCK_KEY = re.compile(r"_blocks\.(\d+)\.(\w+)\.(\w+)$")


def is_lukemelas_efficientnet(state: dict[str, torch.Tensor]) -> bool:
    """Whether a state dict is an EfficientNet in lukemelas' layout."""
    return "_conv_stem.weight" in state and any(k.startswith("_blocks.") for k in state)


def timm_stage_lengths(net: nn.Module | None) -> list[int] | None:
    """Blocks per stage of a timm EfficientNet (smp's timm-efficientnet encoders, the feature
    extractor of its ``tu-`` ones), or None for any other module."""
    blocks = getattr(net, "blocks", None)
    if not isinstance(blocks, nn.Sequential) or not hasattr(net, "conv_stem"):
        return None
    return [len(stage) for stage in blocks]


def to_timm_efficientnet(
    state: dict[str, torch.Tensor], stage_lengths: list[int]
) -> dict[str, torch.Tensor]:
    """`state` (lukemelas' layout) with timm's names for an encoder with `stage_lengths` blocks
    per stage; its classifier becomes ``classifier.*``.

    Raises ValueError when the block counts differ (another EfficientNet size) or a key has no
    counterpart, naming it.
    """
    flat = [(s, i) for s, length in enumerate(stage_lengths) for i in range(length)]
    blocks = {int(m[1]) for k in state if (m := _BLOCK_KEY.match(k))}
    if len(blocks) != len(flat):
        raise ValueError(
            f"the file's EfficientNet has {len(blocks)} blocks, the encoder {len(flat)} "
            f"({stage_lengths} per stage): they are different EfficientNet sizes"
        )
    renamed = {}
    for key, value in state.items():
        match = _BLOCK_KEY.match(key)
        if match:
            number, layer, param = int(match[1]), match[2], match[3]
            stage, index = flat[number]
            expands = f"_blocks.{number}._expand_conv.weight" in state
            table = _INVERTED_RESIDUAL if expands else _SEPARABLE
            new = table.get(layer)
            prefix = f"blocks.{stage}.{index}."
        else:
            layer, _, param = key.rpartition(".")
            new, prefix = _TOP.get(layer), ""
        if new is None:
            raise ValueError(f"EfficientNet key {key} has no counterpart in timm's layout")
        renamed[f"{prefix}{new}.{param}"] = value
    return renamed
