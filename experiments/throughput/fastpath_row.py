"""Row 2, fast path: segkit's default precision and memory format against plain fp32 NCHW.

The default (`trainer.precision=auto`, `model.channels_last=auto`) is resolved as
`segkit.train` resolves it on this machine; both settings train the same network (same
initial weights, data, optimizer) in the hand-written loop, taking turns block by block, so
the ratio isolates precision and memory format. For reference the row also times bf16-mixed
channels-last, what `auto` picks on hardware with native bf16, with fewer steps (emulated bf16
is an order of magnitude slower on CPUs without it), and with ``--compile`` fp32 NCHW through
`torch.compile` (its compilation is in the warm-up).

    python fastpath_row.py unet_resnet18 [--size 256 --batch 8 --block 3 --reps 5]

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from common import (
    BF16_CHANNELS_LAST,
    FP32_NCHW,
    MODELS,
    plain_loops,
    summary,
)


def measure(
    model: str, size: int, batch: int, block: int, reps: int, bf16_reps: int, compiled: bool
) -> dict:
    settings = {"default": (), "fp32_nchw": FP32_NCHW, "bf16_channels_last": BF16_CHANNELS_LAST}
    if compiled:
        settings["fp32_nchw_compiled"] = FP32_NCHW
    with tempfile.TemporaryDirectory() as tmp:
        base = [*MODELS[model], f"data.image_size={size}", f"data.batch_size={batch}"]
        compiled = [name for name in settings if name.endswith("compiled")]
        loops = plain_loops(base, settings, Path(tmp), 1 + reps * block, compiled)
    counts = {name: 1 if name.startswith("bf16") else block for name in loops}
    for loop in loops.values():
        loop.run(1)  # warm-up (and compilation)
    times: dict[str, list[float]] = {name: [] for name in loops}
    for rep in range(reps):  # take turns, so drift hits every setting alike
        for name, loop in loops.items():
            if name != "bf16_channels_last" or rep < bf16_reps:
                times[name].append(loop.run(counts[name]) / counts[name])
    fp32 = times["fp32_nchw"]
    return {
        "model": model,
        "input": f"{batch}x3x{size}x{size}",
        "resolved": {name: loop.setting for name, loop in loops.items()},
        "step_s": {name: summary(t) for name, t in times.items()},
        # fp32 step time / setting's step time, pair by pair (> 1: faster than fp32 NCHW).
        "speedup_vs_fp32_nchw": {
            name: summary([f / s for f, s in zip(fp32, t, strict=False)], 3)
            for name, t in times.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(MODELS))
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--block", type=int, default=3)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--bf16-reps", type=int, default=2, help="one step each")
    parser.add_argument("--compile", action="store_true", help="also fp32 torch.compile")
    args = parser.parse_args()
    row = measure(
        args.model, args.size, args.batch, args.block, args.reps, args.bf16_reps, args.compile
    )
    print(json.dumps(row))


if __name__ == "__main__":
    main()
