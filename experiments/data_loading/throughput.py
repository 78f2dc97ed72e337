"""Loader throughput for Cityscapes-sized images: the default train pipeline against decoding.

Question: per loader worker, how many 1024x2048 Cityscapes samples per second does segkit read
with `conf/data/cityscapes.yaml`'s train pipeline (random scale 0.5-2, 512x1024 crop, flip,
colour jitter, tensor conversion), and how does that compare with decoding the PNG pair alone?
The goal: the pipeline costs at most about as much as decoding (full / decode-only <= ~2x).

Method: a Cityscapes tree of `--images` synthetic 1024x2048 scenes in the official layout
(PNG image + labelIds, written by segkit's exporter), read in one process with one thread for
torch and OpenCV (what one loader worker gets): "decode" = open both PNGs, RGB conversion,
labelId -> trainId lookup (`CityscapesSegmentation.read`); "pipeline" = a full sample
(`dataset[i]`: decode + augmentation + normalised tensors). The two take turns, `--passes`
times over all images, and the median per-image time of each is reported.

    python experiments/data_loading/throughput.py [--images 6] [--passes 3]

Writes throughput.md and throughput.json beside this file.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from segkit.data.scenes import SceneSpec
from segkit.data.synthetic_export import export_scenes
from segkit.run.compose import CONF_DIR

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=6)
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "cityscapes"
        spec = SceneSpec(height=1024, width=2048, num_classes=5, difficulty=0.5)
        export_scenes("cityscapes", root, spec, splits=("train",), num_images=args.images)
        png_mb = (
            statistics.mean(p.stat().st_size for p in root.glob("leftImg8bit/train/*/*.png"))
            / 2**20
        )
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            cfg = compose("train", overrides=["data=cityscapes", f"data.root={root}"])
        datamodule = instantiate(cfg.data, _convert_="all", num_workers=0)
        dataset = datamodule.dataset("train")
        torch.manual_seed(0)
        times: dict[str, list[float]] = {"decode": [], "pipeline": []}
        for _ in range(args.passes):
            for index in range(len(dataset)):
                for name, read in (("decode", dataset.read), ("pipeline", dataset.__getitem__)):
                    start = time.perf_counter()
                    read(index)
                    times[name].append(time.perf_counter() - start)
        shape = tuple(dataset[0]["image"].shape)

    decode, pipeline = (statistics.median(times[k]) for k in ("decode", "pipeline"))
    result = {
        "machine": {"processor": platform.processor(), "torch": torch.__version__},
        "images": args.images,
        "passes": args.passes,
        "mean_png_mb": round(png_mb, 2),
        "sample_shape": list(shape),
        "decode_s": round(decode, 4),
        "pipeline_s": round(pipeline, 4),
        "decode_images_per_s": round(1 / decode, 2),
        "pipeline_images_per_s": round(1 / pipeline, 2),
        "augmentation_s": round(pipeline - decode, 4),
        "pipeline_over_decode": round(pipeline / decode, 2),
    }
    report = "\n".join(
        [
            "# Loader throughput per worker, 1024x2048 Cityscapes PNGs",
            "",
            f"{args.images} images x {args.passes} passes, mean image PNG {png_mb:.2f} MB, "
            f"1 thread; samples {shape}.",
            "",
            "| read | median s/image | images/s per worker |",
            "|---|---|---|",
            f"| decode only | {decode:.4f} | {1 / decode:.2f} |",
            f"| default train pipeline | {pipeline:.4f} | {1 / pipeline:.2f} |",
            "",
            f"Augmentation + tensor conversion: {pipeline - decode:.4f} s/image; "
            f"pipeline / decode = {pipeline / decode:.2f}x "
            f"(goal: <= ~2x, i.e. augmenting costs at most about as much as decoding).",
            "",
        ]
    )
    (HERE / "throughput.json").write_text(json.dumps(result, indent=1) + "\n")
    (HERE / "throughput.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
