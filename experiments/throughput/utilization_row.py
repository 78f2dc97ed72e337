"""Row 3, machine limit: how much of this CPU's measured matrix-multiply peak a training step
uses.

Peak: a large square matrix multiply (``--matmul`` n, 2n^3 FLOPs) in fp32 and in bf16, the
median of repeated runs. Per model: FLOPs of one training step (forward and backward, counted
by `torch.utils.flop_counter.FlopCounterMode`: convolutions and matrix multiplies) divided by
the step time of the hand-written loop in fp32 NCHW and in bf16-mixed channels-last.

    python utilization_row.py unet_resnet18 deeplabv3plus [--size 64 --batch 16 --reps 5]

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from common import BF16_CHANNELS_LAST, FP32_NCHW, MODELS, PlainLoop, plain_loops, summary
from torch.utils.flop_counter import FlopCounterMode


def matmul_peak(n: int, dtype: torch.dtype, reps: int) -> dict:
    """FLOP/s of an n x n matrix multiply in `dtype` (median, min, max over `reps`)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b  # warm-up
    rates = []
    for _ in range(reps):
        start = time.perf_counter()
        a @ b
        rates.append(2 * n**3 / (time.perf_counter() - start))
    return summary(rates, 0)


def step_flops(loop: PlainLoop) -> int:
    with FlopCounterMode(display=False) as counter:
        loop.step()
    return counter.get_total_flops()


def measure(models: list[str], size: int, batch: int, reps: int, bf16_reps: int, n: int) -> dict:
    peak = {
        "fp32": matmul_peak(n, torch.float32, reps),
        "bf16": matmul_peak(n, torch.bfloat16, max(2, bf16_reps)),
    }
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            base = [*MODELS[model], f"data.image_size={size}", f"data.batch_size={batch}"]
            settings = {"fp32": FP32_NCHW, "bf16": BF16_CHANNELS_LAST}
            loops = plain_loops(base, settings, Path(tmp), 2 + reps)
            flops = step_flops(loops["fp32"])  # also the fp32 warm-up step
            loops["bf16"].run(1)
            step_s = {"fp32": [], "bf16": []}
            for rep in range(reps):
                step_s["fp32"].append(loops["fp32"].run(1))
                if rep < bf16_reps:
                    step_s["bf16"].append(loops["bf16"].run(1))
            times = {k: summary(v) for k, v in step_s.items()}
            median = {k: t["median"] for k, t in times.items()}
            rows[model] = {
                "input": f"{batch}x3x{size}x{size}",
                "gflop_per_step": round(flops / 1e9, 2),
                "step_s": times,
                "gflops": {k: round(flops / t / 1e9, 1) for k, t in median.items()},
                "utilization_pct": {
                    k: round(100 * flops / t / peak[k]["median"], 1) for k, t in median.items()
                },
            }
    return {
        "matmul_n": n,
        "peak_gflops": {k: round(v["median"] / 1e9, 1) for k, v in peak.items()},
        "peak_gflops_range": {
            k: [round(v["min"] / 1e9, 1), round(v["max"] / 1e9, 1)] for k, v in peak.items()
        },
        "models": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", choices=sorted(MODELS))
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--bf16-reps", type=int, default=2)
    parser.add_argument("--matmul", type=int, default=2048)
    args = parser.parse_args()
    row = measure(args.models, args.size, args.batch, args.reps, args.bf16_reps, args.matmul)
    print(json.dumps(row))


if __name__ == "__main__":
    main()
