"""How much of each run's target score is batch-norm statistics? Re-scores the final weights of
every run of a study (study.py's results.json and run folders) on the target's val split
twice: with the network's own running statistics (what the study reports) and with
statistics re-estimated on the target's training images, weights unchanged (AdaBN, Li et al.,
"Revisiting Batch Normalization For Practical Domain Adaptation", 2016). Writes
``<results>_target_bn.json`` and ``.md`` next to the results file.

    python experiments/domain_adaptation/target_statistics.py
    python experiments/domain_adaptation/target_statistics.py --results other.json --out runs/
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
from pathlib import Path

HERE = Path(__file__).resolve().parent


def target_miou(net, loader, num_classes: int) -> float:
    """mIoU of `net` (eval mode) on `loader`'s semantic batches."""
    import torch

    from segkit.metrics import SegmentationScores

    scores = SegmentationScores(num_classes, 255, [str(c) for c in range(num_classes)])
    net.eval()
    with torch.no_grad():
        for batch in loader:
            logits = net(batch["image"])
            logits = logits["out"] if isinstance(logits, dict) else logits
            scores.update(logits.argmax(1), batch["mask"])
    return float(scores.compute()["miou"])


def with_target_statistics(net, images, batch_size: int):
    """A copy of `net` whose batch-norm running statistics are the mean over `images` (float
    [N,C,H,W]) in batches of `batch_size`; its weights are `net`'s."""
    import torch

    adapted = copy.deepcopy(net)
    for layer in adapted.modules():
        if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm):
            layer.reset_running_stats()
            layer.momentum = None  # a cumulative average over the batches
    adapted.train()
    with torch.no_grad():
        for start in range(0, len(images) - batch_size + 1, batch_size):
            adapted(images[start : start + batch_size])
    return adapted


def rescore(run_dir: Path, images: int, batch_size: int) -> tuple[float, float]:
    """(target val mIoU with the run's statistics, with the target's) of a finished run."""
    import torch
    from hydra.utils import instantiate

    import segkit

    model = segkit.load(run_dir / "checkpoints" / "last.ckpt", device="cpu", precision="32-true")
    data = model.config.data
    target = instantiate(data.target if "target" in data else data, num_workers=0)
    target.setup("fit")
    val = target._loader(target.dataset("val"), 50, train=False)
    train = target.dataset("train")
    stack = torch.stack([train[i]["image"] for i in range(min(images, len(train)))])
    net, classes = model.task.net, int(data.num_classes)
    own = target_miou(net, val, classes)
    return own, target_miou(with_target_statistics(net, stack, batch_size), val, classes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=HERE / "results.json")
    parser.add_argument("--out", type=Path, default=Path("outputs/domain_adaptation"))
    parser.add_argument("--images", type=int, default=800, help="target training images used")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(2)
    runs = json.loads(args.results.read_text())["runs"]
    rows = []
    for run in runs:
        own, adapted = rescore(
            args.out / f"{run['method']}_s{run['seed']}", args.images, args.batch_size
        )
        rows.append({"method": run["method"], "seed": run["seed"], "own": own, "target": adapted})
        print(f"{run['method']} {run['seed']}: {100 * own:.1f} -> {100 * adapted:.1f}", flush=True)
    stem = args.results.with_suffix("")
    Path(f"{stem}_target_bn.json").write_text(json.dumps(rows, indent=1))
    lines = [
        "Target val mIoU (%) of the final weights, mean +- sample std over seeds: with the "
        "network's running batch-norm statistics, and re-estimated on "
        f"{args.images} target training images (weights unchanged):",
        "",
        "| method | own statistics | target statistics | change (points) |",
        "|---|---|---|---|",
    ]
    for method in dict.fromkeys(r["method"] for r in rows):
        own = [100 * r["own"] for r in rows if r["method"] == method]
        adapted = [100 * r["target"] for r in rows if r["method"] == method]

        def shown(values: list[float]) -> str:
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            return f"{statistics.mean(values):.1f} +- {spread:.1f}"

        changes = ", ".join(f"{b - a:+.1f}" for a, b in zip(own, adapted, strict=True))
        lines.append(f"| {method} | {shown(own)} | {shown(adapted)} | {changes} |")
    Path(f"{stem}_target_bn.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
