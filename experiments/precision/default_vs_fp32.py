"""segkit's default trainer settings against plain fp32 and the alternatives, for U-Net and
DeepLabV3+.

Question: how much faster is the default (`trainer.precision=auto`, `model.channels_last=auto`)
than plain fp32 NCHW (`trainer=fp32 model.channels_last=false`) on this machine, how do the
alternatives it could have picked compare, and does accuracy hold?

1. Step time, side by side in one process: the networks of `model=unet` and
   `model=deeplabv3plus` as configured, training steps (forward, loss in fp32, backward, fused
   AdamW) on the default batch (16x3x64x64), taking turns between the settings.
2. With --train: the full recipe (`python -m segkit.train model=<m>`) with the default settings
   and with fp32 channels-last (numerically different), and the final val/test mIoU of each.

    python experiments/precision/default_vs_fp32.py [--train] [--repeats 20]

Writes default_vs_fp32.md and default_vs_fp32.json beside this file.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from segkit.run.compose import CONF_DIR
from segkit.run.precision import resolve_precision

HERE = Path(__file__).resolve().parent
MODELS = ("unet", "deeplabv3plus")
SETTINGS = {
    "default": (),
    "fp32 NCHW": ("trainer=fp32", "model.channels_last=false"),
    "fp32 channels-last": ("trainer=fp32", "model.channels_last=true"),
    "bf16-mixed channels-last": ("trainer.precision=bf16-mixed", "model.channels_last=true"),
}


def compose_cfg(model: str, *overrides: str):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose("train", overrides=[f"model={model}", *overrides])


def step_fn(model: str, overrides: tuple[str, ...]):
    """A training step of `model`'s network as configured with `overrides`."""
    cfg = compose_cfg(model, *overrides)
    precision = resolve_precision(cfg.trainer.precision, "cpu")
    dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(str(precision))
    channels_last = cfg.model.channels_last
    if channels_last == "auto":  # as SemanticSegmentation.setup decides
        channels_last = str(precision).endswith("-mixed")
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    torch.manual_seed(0)
    net = instantiate(cfg.model.net).to(memory_format=fmt)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, fused=True)
    size, batch = cfg.data.image_size, cfg.data.batch_size
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=fmt)
    y = torch.randint(0, cfg.data.num_classes, (batch, size, size))

    def step() -> None:
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            logits = net(x)
        loss = torch.nn.functional.cross_entropy(logits.float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step, f"{precision}{' channels-last' if channels_last else ' NCHW'}"


def time_side_by_side(model: str, repeats: int) -> dict:
    steps, resolved = {}, {}
    for name, overrides in SETTINGS.items():
        steps[name], resolved[name] = step_fn(model, overrides)
    # bf16 is emulated on CPUs without native support and ~10x slower: fewer repeats.
    counts = {n: max(2, repeats // 5) if "bf16" in resolved[n] else repeats for n in steps}
    for fn in steps.values():  # warm-up
        fn()
        fn()
    totals = dict.fromkeys(steps, 0.0)
    for i in range(repeats):  # take turns, so drift hits every setting alike
        for name, fn in steps.items():
            if i < counts[name]:
                start = time.perf_counter()
                fn()
                totals[name] += time.perf_counter() - start
    step_s = {n: totals[n] / counts[n] for n in steps}
    return {
        "model": model,
        "resolved": resolved,
        "step_s": step_s,
        "speedup_vs_fp32_nchw": {n: step_s["fp32 NCHW"] / s for n, s in step_s.items()},
    }


def train_run(model: str, overrides: tuple[str, ...], run_dir: Path) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "segkit.train",
        f"model={model}",
        *overrides,
        "logger=none",
        f"hydra.run.dir={run_dir}",
    ]
    subprocess.run(cmd, check=True, capture_output=True)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {"val_miou": metrics["val/miou"], "test_miou": metrics["test/miou"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", action="store_true", help="also run both full recipes")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--run-root", type=Path, default=Path("outputs/default_vs_fp32"))
    args = parser.parse_args()

    rows = [time_side_by_side(m, args.repeats) for m in MODELS]
    for row in rows:
        print(json.dumps(row))
    if args.train:
        for row in rows:
            m = row["model"]
            row["runs"] = {
                name: train_run(m, SETTINGS[name], args.run_root / f"{m}_{name.replace(' ', '_')}")
                for name in ("default", "fp32 channels-last")
            }
            print(json.dumps(row))
    machine = {
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    result = {"machine": machine, "rows": rows}
    (HERE / "default_vs_fp32.json").write_text(json.dumps(result, indent=2))
    lines = [
        f"Machine: {machine}",
        "",
        "| model | setting | resolves to | train step (s) | speed-up vs fp32 NCHW |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        for name in SETTINGS:
            lines.append(
                f"| {r['model']} | {name} | {r['resolved'][name]} | {r['step_s'][name]:.3f} "
                f"| {r['speedup_vs_fp32_nchw'][name]:.2f}x |"
            )
    if args.train:
        lines += ["", "| model | setting | val mIoU | test mIoU |", "|---|---|---|---|"]
        for r in rows:
            for name, run in r["runs"].items():
                lines.append(
                    f"| {r['model']} | {name} | {run['val_miou']:.4f} | {run['test_miou']:.4f} |"
                )
    (HERE / "default_vs_fp32.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
