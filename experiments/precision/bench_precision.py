"""Side-by-side CPU speed of precision x memory format for segkit's default U-Net.

Question: which precision and memory format should segkit use by default on CPU?
Measures, in one process and one sitting, training-step and inference time of
smp.Unet(resnet18) for fp32/bf16 autocast x NCHW/channels-last, and prints ratios against
plain fp32 NCHW. Writes results.md and results.json beside this file.

    python experiments/precision/bench_precision.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import segmentation_models_pytorch as smp
import torch

HERE = Path(__file__).resolve().parent
MODES = [("fp32", False), ("fp32", True), ("bf16", False), ("bf16", True)]


def build(channels_last: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    net = smp.Unet(
        "resnet18", encoder_weights=None, classes=5, decoder_channels=(128, 64, 32, 16, 16)
    )  # segkit's default model
    return net.to(memory_format=torch.channels_last) if channels_last else net


def time_call(fn, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def measure(size: int, batch: int, dtype: str, channels_last: bool, repeats: int) -> dict:
    net = build(channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=fmt)
    y = torch.randint(0, 5, (batch, size, size))
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16")

    def train_step():
        with autocast:
            loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    def infer():
        with torch.no_grad(), autocast:
            net(x)

    # bf16 is emulated on CPUs without AVX512-BF16/AMX: time fewer steps there.
    reps = repeats if dtype == "fp32" else max(1, repeats // 3)
    train_s = time_call(train_step, warmup=2, repeats=reps)
    net.eval()
    infer_s = time_call(infer, warmup=1, repeats=reps)
    return {
        "size": size,
        "batch": batch,
        "dtype": dtype,
        "channels_last": channels_last,
        "train_step_s": train_s,
        "infer_s": infer_s,
    }


def channels_last_max_diff(size: int) -> float:
    x = torch.randn(2, 3, size, size)
    a, b = build(False).eval(), build(True).eval()
    with torch.no_grad():
        return float((a(x) - b(x.contiguous(memory_format=torch.channels_last))).abs().max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64x64 only, fewer repeats")
    args = parser.parse_args()
    shapes = [(64, 16)] if args.quick else [(64, 16), (128, 16)]
    repeats = 3 if args.quick else 6
    rows = [measure(s, b, d, cl, repeats) for s, b in shapes for d, cl in MODES]
    for row in rows:
        base = next(
            r
            for r in rows
            if r["size"] == row["size"] and r["dtype"] == "fp32" and not r["channels_last"]
        )
        row["train_speedup"] = base["train_step_s"] / row["train_step_s"]
        row["infer_speedup"] = base["infer_s"] / row["infer_s"]
    machine = {
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "processor": platform.processor() or platform.machine(),
    }
    diff = channels_last_max_diff(64)
    (HERE / "results.json").write_text(
        json.dumps(
            {"machine": machine, "rows": rows, "channels_last_max_abs_logit_diff": diff}, indent=2
        )
    )
    lines = [
        f"Machine: {machine}",
        "",
        "| input | precision | memory format | train step (s) | train speed-up | "
        "inference (s) | inference speed-up |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['batch']}x{r['size']}x{r['size']} | {r['dtype']} | "
            f"{'channels-last' if r['channels_last'] else 'NCHW'} | {r['train_step_s']:.3f} | "
            f"{r['train_speedup']:.2f}x | {r['infer_s']:.3f} | {r['infer_speedup']:.2f}x |"
        )
    lines += ["", f"channels-last vs NCHW, fp32 logits: max abs difference {diff:.2e}"]
    (HERE / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
