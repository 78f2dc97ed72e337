"""Mask R-CNN training and evaluation speed on CPU at 512x1024, light vs ResNet-50, with peak
memory.

Question: how many 512x1024 images per second does segkit's Mask R-CNN train on and evaluate
on this machine, for `model=maskrcnn` (ResNet-18 FPN, narrow heads, fewer proposals) and
`model=maskrcnn_r50` (torchvision's COCO setup), and how much memory does each take?

Method: each network is built from its config with `min_size=512 max_size=1024` (so it runs
at the input resolution) and 9 classes (Cityscapes things + background), in its own process
so peak RSS is its own. Inputs: 512x1024 images with 6 square instances each. Training: one
warm-up step, then `--steps` timed steps (forward, losses, backward, AdamW) at batch 2.
Evaluation: one warm-up, then `--steps` timed forward passes in eval mode at batch 1.

    python experiments/instance/speed.py [--steps 3]

Writes speed.md and speed.json beside this file.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODELS = {"maskrcnn (ResNet-18, light heads)": "maskrcnn", "maskrcnn_r50": "maskrcnn_r50"}


def measure(model: str, steps: int) -> dict[str, float]:
    import torch
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from segkit.run.compose import CONF_DIR

    torch.manual_seed(0)
    overrides = [f"model={model}", "model.net.min_size=512", "model.net.max_size=1024",
                 "model.net.num_classes=9"]  # fmt: skip
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    net = instantiate(cfg.model.net)

    def sample():
        image = torch.rand(3, 512, 1024)
        masks = torch.zeros(6, 512, 1024, dtype=torch.uint8)
        boxes = []
        for k in range(6):
            x, y = 100 + 140 * k, 100 + 40 * k
            masks[k, y : y + 96, x : x + 96] = 1
            boxes.append([x, y, x + 96, y + 96])
        target = {"boxes": torch.tensor(boxes, dtype=torch.float32),
                  "labels": torch.arange(1, 7), "masks": masks}  # fmt: skip
        return image, target

    batch = [sample() for _ in range(2)]
    images, targets = [b[0] for b in batch], [b[1] for b in batch]
    optimizer = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-4)
    net.train()
    times = []
    for step in range(steps + 1):
        start = time.perf_counter()
        loss = sum(net(images, targets).values())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if step:
            times.append(time.perf_counter() - start)
    train_s = sum(times) / len(times) / len(images)
    net.eval()
    times = []
    with torch.inference_mode():
        for step in range(steps + 1):
            start = time.perf_counter()
            net([images[0]])
            if step:
                times.append(time.perf_counter() - start)
    eval_s = sum(times) / len(times)
    return {
        "train_images_per_s": 1 / train_s,
        "eval_images_per_s": 1 / eval_s,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "parameters_m": sum(p.numel() for p in net.parameters()) / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child process: measure one model
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.steps)))
        return
    results = {}
    for label, model in MODELS.items():
        out = subprocess.run(
            [sys.executable, __file__, "--one", model, "--steps", str(args.steps)],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        results[label] = json.loads(out.strip().splitlines()[-1])
    import torch

    lines = [
        "# Mask R-CNN on CPU at 512x1024",
        "",
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.steps} timed steps "
        "after one warm-up; training at batch 2, evaluation at batch 1; 6 instances per image.",
        "",
        "| model | parameters (M) | train images/s | eval images/s | peak RSS (GB) |",
        "|---|---|---|---|---|",
    ]
    for label, r in results.items():
        lines.append(
            f"| {label} | {r['parameters_m']:.1f} | {r['train_images_per_s']:.3f} | "
            f"{r['eval_images_per_s']:.3f} | {r['peak_rss_gb']:.2f} |"
        )
    light, r50 = results.values()
    lines += [
        "",
        f"Light / R50: training {light['train_images_per_s'] / r50['train_images_per_s']:.2f}x, "
        f"evaluation {light['eval_images_per_s'] / r50['eval_images_per_s']:.2f}x.",
        "",
    ]
    (HERE / "speed.json").write_text(json.dumps(results, indent=1) + "\n")
    (HERE / "speed.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
