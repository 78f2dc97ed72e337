"""Do the folder preset's defaults hold on real data? `data=folder` against a plain PyTorch loop
(plain_loop.py: Adam 1e-3, random crop and flip, no scheduler) on the same U-Net, data, crop,
batch and epochs, with paired seeds, on real datasets of different kinds; plus ablations of
the preset (one default changed at a time). Every run scores its final weights on the
validation split.

    python experiments/folder_defaults/compare.py --dataset membrane=/data/membrane \
        --dataset camvid96=/data/camvid_folder96
    python experiments/folder_defaults/compare.py ... --arms preset plain --seeds 3 4

Writes results.json (every run, with its command), results.md (mean +- std per arm, and each
arm's paired difference to the plain loop with a bootstrap 90% interval over seeds).
Finished runs are kept, so an interrupted comparison resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # experiments/study_runs.py
from study_runs import final_weights_overrides, run_all, train_run  # noqa: E402

#: Per dataset kind: the facts and the shared budget (crop, batch, epochs, training images).
DATASETS = {
    # ISBI 2012 EM membranes (zhixuhao/unet data/membrane/train): 30 grey 512x512 frames,
    # 0/255 masks; the seeded 20% validation split leaves 24 for training.
    "membrane": {
        "facts": ["data.in_channels=1", "data.mask_format=binary", "data.num_classes=2"],
        "loop": ["--in-channels", "1", "--mask-format", "binary", "--num-classes", "2"],
        "crop": (256, 256),
        "batch": 8,
        "epochs": 50,
        "train_images": 24,
    },
    # CamVid as a folder dataset (prepare_camvid.py): 367 train / 101 val RGB frames at
    # 96x128, 11 classes, void ignored.
    "camvid96": {
        "facts": [
            "data.num_classes=11",
            "data.class_names=[c0,c1,c2,c3,c4,c5,c6,c7,c8,c9,c10]",
            "data.palette=[[0,0,0],[1,1,1],[2,2,2],[3,3,3],[4,4,4],[5,5,5],[6,6,6],[7,7,7],"
            "[8,8,8],[9,9,9],[10,10,10]]",
        ],
        "loop": ["--num-classes", "11"],
        "crop": (96, 128),
        "batch": 8,
        "epochs": 40,
        "train_images": 367,
    },
}
#: Arm -> segkit.train overrides on top of data=folder ("plain": the hand-written loop).
ARMS = {
    "preset": [],
    "plain": None,
    "preset_no_scale": ["data.train_transform.transforms.0.scale_limit=[0.0,0.0]"],
    "preset_no_jitter": ["data.train_transform.transforms.3.p=0.0"],
    "preset_adam_1e-3_constant": ["optimizer.lr=1e-3", "scheduler=none"],
}


def run_segkit(dataset: str, root: str, arm: str, seed: int, args) -> dict:
    spec = DATASETS[dataset]
    steps = spec["epochs"] * (spec["train_images"] // spec["batch"])
    crop = spec["crop"]
    overrides = [
        "data=folder",
        f"data.root={root}",
        *spec["facts"],
        f"data.crop_size=[{crop[0]},{crop[1]}]",
        "data.num_workers=0",
        *final_weights_overrides(spec["batch"], seed, steps),
        *ARMS[arm],
    ]
    result = train_run(overrides, args.out / f"{dataset}_{arm}_s{seed}", args.threads)
    return {
        "val_miou": result["metrics"]["val/miou"],
        **{k: result[k] for k in ("seconds", "command")},
    }


def run_plain(dataset: str, root: str, seed: int, args) -> dict:
    spec = DATASETS[dataset]
    cmd = [
        sys.executable, str(HERE / "plain_loop.py"), "--root", root, "--seed", str(seed),
        "--epochs", str(spec["epochs"]), "--batch-size", str(spec["batch"]),
        "--crop", *map(str, spec["crop"]), *spec["loop"],
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"plain loop failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    command = "python " + " ".join(cmd[1:])
    return {
        "val_miou": out["val_miou"],
        "seconds": round(time.perf_counter() - start, 1),
        "command": command,
    }


def bootstrap(values: list[float], rounds: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """5th and 95th percentiles of the mean of `values` resampled with replacement."""
    rng = random.Random(seed)
    means = sorted(statistics.mean(rng.choices(values, k=len(values))) for _ in range(rounds))
    return means[int(0.05 * rounds)], means[int(0.95 * rounds) - 1]


def write_report(runs: list[dict], path: Path) -> None:
    lines = []
    for dataset in sorted({r["dataset"] for r in runs}):
        spec = DATASETS[dataset]
        lines += [
            f"## {dataset} ({spec['epochs']} epochs, batch {spec['batch']}, crop "
            f"{spec['crop'][0]}x{spec['crop'][1]})",
            "",
            "| arm | val mIoU (%) mean +- std | minus plain loop, per seed | mean [90% CI] |",
            "|---|---|---|---|",
        ]
        plain = {
            r["seed"]: r["val_miou"] for r in runs if (r["dataset"], r["arm"]) == (dataset, "plain")
        }
        for arm in ARMS:
            cell = sorted(
                (r for r in runs if (r["dataset"], r["arm"]) == (dataset, arm)),
                key=lambda r: r["seed"],
            )
            if not cell:
                continue
            values = [100 * r["val_miou"] for r in cell]
            std = statistics.stdev(values) if len(values) > 1 else 0.0
            diffs = [100 * (r["val_miou"] - plain[r["seed"]]) for r in cell if r["seed"] in plain]
            shown, interval = "-", "-"
            if diffs and arm != "plain":
                shown = ", ".join(f"{d:+.1f}" for d in diffs)
                low, high = bootstrap(diffs)
                interval = f"{statistics.mean(diffs):+.1f} [{low:+.1f}, {high:+.1f}]"
            lines.append(
                f"| {arm} | {statistics.mean(values):.1f} +- {std:.1f} (n={len(values)}) | "
                f"{shown} | {interval} |"
            )
        lines.append("")
    path.write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", action="append", required=True, help="name=root")
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("outputs/folder_defaults"))
    parser.add_argument("--results", type=Path, default=HERE / "results.json")
    args = parser.parse_args()
    roots = dict(item.split("=", 1) for item in args.dataset)
    unknown = sorted(set(roots) - set(DATASETS))
    if unknown:
        parser.error(f"unknown datasets {unknown}: expected some of {sorted(DATASETS)}")

    def run(cell: tuple[str, str, int]) -> dict:
        dataset, arm, seed = cell
        root = roots[dataset]
        out = (
            run_plain(dataset, root, seed, args)
            if arm == "plain"
            else run_segkit(dataset, root, arm, seed, args)
        )
        return {"dataset": dataset, "arm": arm, "seed": seed, **out}

    cells = [(d, a, s) for s in args.seeds for d in roots for a in args.arms]
    runs = run_all(
        args.results,
        {"datasets": sorted(roots), "threads": args.threads},
        cells,
        key=lambda r: (r["dataset"], r["arm"], r["seed"]),
        run=run,
        jobs=args.jobs,
    )
    write_report(runs, args.results.with_suffix(".md"))
    print(args.results.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
