"""Inference throughput on this CPU at Cityscapes resolution (1024x2048), side by side.

Question: how fast does a U-Net (ResNet-18, as `model=unet`, 19 classes) predict a full
Cityscapes image with plain fp32 PyTorch, with the bf16 + channels-last "fast path", with ONNX
Runtime (the file `segkit.export` writes), and what does sliding-window inference (512x1024
windows every 341x683 pixels, mmsegmentation's Cityscapes test mode) cost against one
whole-image pass? One process, torch threads = cores, batch 1, random weights (speed does
not depend on them); each setting is timed `--repeats` times after a warm-up, taking turns.

    python experiments/inference/speed.py [--repeats 3]

Writes speed.md and speed.json beside this file.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from segkit.export import export_network
from segkit.inference import sliding_window_logits
from segkit.run.compose import CONF_DIR

HERE = Path(__file__).resolve().parent
SIZE = (1024, 2048)


def build_net() -> torch.nn.Module:
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=["model=unet", "data.num_classes=19",
                                          f"data.class_names=[{','.join(map(str, range(19)))}]",
                                          "data.palette=null"])  # fmt: skip
    torch.manual_seed(0)
    return instantiate(cfg.model.net).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    net = build_net()
    image = torch.randn(1, 3, *SIZE)
    fast_net = build_net().to(memory_format=torch.channels_last)
    fast_image = image.contiguous(memory_format=torch.channels_last)
    work = Path(tempfile.mkdtemp())
    onnx_path = work / "unet.onnx"
    export_network(net, onnx_path, "onnx", divisor=1, in_channels=3)

    def fp32():
        return net(image)

    def fast_path():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return fast_net(fast_image)

    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    onnx_input = {"image": image.numpy()}

    def onnxruntime():  # the session is created once, as a server would
        return torch.from_numpy(session.run(None, onnx_input)[0])

    def sliding():
        return sliding_window_logits(net, image, (512, 1024), (341, 683))

    settings = {
        "fp32 eager (NCHW)": fp32,
        "fast path (bf16 autocast + channels-last)": fast_path,
        "ONNX Runtime (fp32, CPU provider)": onnxruntime,
        "fp32 sliding window 512x1024 / 341x683": sliding,
    }
    seconds: dict[str, list[float]] = {name: [] for name in settings}
    with torch.no_grad():
        reference = fp32()
        agreement = {
            name: (fn().float().argmax(1) == reference.argmax(1)).float().mean().item()
            for name, fn in settings.items()
        }  # doubles as the warm-up
        for _ in range(args.repeats):
            for name, fn in settings.items():
                start = time.perf_counter()
                fn()
                seconds[name].append(time.perf_counter() - start)
                print(f"{name}: {seconds[name][-1]:.2f} s", flush=True)

    base = statistics.median(seconds["fp32 eager (NCHW)"])
    rows = {
        name: {
            "s_per_image_median": statistics.median(times),
            "s_min": min(times),
            "s_max": max(times),
            "images_per_s": 1 / statistics.median(times),
            "speed_vs_fp32": base / statistics.median(times),
            "argmax_agreement_with_fp32": agreement[name],
        }
        for name, times in seconds.items()
    }
    result = {
        "model": "unet (ResNet-18, decoder 128-64-32-16-16), 19 classes",
        "image": list(SIZE),
        "threads": torch.get_num_threads(),
        "repeats": args.repeats,
        "settings": rows,
    }
    (HERE / "speed.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# Inference at {SIZE[0]}x{SIZE[1]}, U-Net ResNet-18, batch 1, "
        f"{torch.get_num_threads()} threads",
        "",
        f"Median of {args.repeats} timings after a warm-up, settings taking turns. "
        "Command: `python experiments/inference/speed.py`.",
        "",
        "| setting | s/image (median) | min | max | images/s | vs fp32 | argmax = fp32 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['s_per_image_median']:.2f} | {r['s_min']:.2f} | {r['s_max']:.2f} | "
            f"{r['images_per_s']:.3f} | {r['speed_vs_fp32']:.2f}x | "
            f"{r['argmax_agreement_with_fp32']:.4%} |"
        )
    (HERE / "speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
