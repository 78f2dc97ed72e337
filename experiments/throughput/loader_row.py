"""Row 4, data: loader images/s of the default synthetic and the Cityscapes pipelines at their
default `num_workers`, against the images/s the model trains on.

- synthetic: `data=synthetic` as configured (64x64, batch 16, num_workers 0: the loader runs
  in the training process, between steps). One epoch first renders and caches the scenes, as
  the first training epoch does; then `--reps` timed passes of `--batches` batches.
- cityscapes: a tree of `--images` 1024x2048 scenes in the official layout (leftImg8bit PNG +
  gtFine labelIds), `data=cityscapes` as configured (scale 0.5-2, 512x1024 crop, flip, colour
  jitter; batch 8; num_workers 4, persistent). The first epoch starts the workers; then
  `--reps` timed epochs.
- model: the default network (U-Net ResNet-18) in the hand-written loop on each pipeline's
  training batches, in the default precision (Cityscapes crops at batch `--model-batch`: on
  CPU images/s hardly depends on the batch).

    python loader_row.py [--images 16 --reps 3]

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from common import MODELS, PlainLoop, compose_run, summary, synthetic_batches
from hydra.utils import instantiate

from segkit.data.scenes import SceneSpec
from segkit.data.synthetic_export import export_scenes


def loader_rate(cfg, batches_per_rep: int | None, reps: int) -> tuple[dict, int]:
    """(images/s summary, num_workers) of `cfg.data`'s training loader after one warm-up pass."""
    datamodule = instantiate(cfg.data, _convert_="all")
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    for _ in loader:  # warm-up: scene cache / worker start
        pass
    rates = []
    for _ in range(reps):
        images, start = 0, time.perf_counter()
        for index, batch in enumerate(loader):
            images += batch["image"].shape[0]
            if batches_per_rep and index + 1 == batches_per_rep:
                break
        rates.append(images / (time.perf_counter() - start))
    return summary(rates, 2), loader.num_workers


def model_rate(cfg, reps: int) -> dict:
    """Images/s the default network trains on with `cfg`'s input (hand-written loop)."""
    batches = synthetic_batches(cfg, 1)
    loop = PlainLoop(cfg, batches, 1 + reps)
    loop.run(1)
    batch = batches[0]["image"].shape[0]
    return summary([batch / loop.run(1) for _ in range(reps)], 2)


def measure(images: int, reps: int, batches: int, model_batch: int, size: int) -> dict:
    model = MODELS["unet_resnet18"]
    with tempfile.TemporaryDirectory() as tmp:
        synthetic = compose_run(model, Path(tmp) / "run")
        syn_rate, syn_workers = loader_rate(synthetic, batches, reps)
        syn_model = model_rate(synthetic, reps)

        root = Path(tmp) / "cityscapes"
        spec = SceneSpec(height=size, width=2 * size, num_classes=5, difficulty=0.5)
        export_scenes("cityscapes", root, spec, splits=("train", "val"), num_images=images)
        crop = [size // 2, size]
        city = compose_run(
            [*model, "data=cityscapes", f"data.root={root}", f"data.crop_size={crop}"],
            Path(tmp) / "run",
        )
        city_rate, city_workers = loader_rate(city, None, reps)
        # The model's side: the same crops (reading them is not timed).
        crops = compose_run(
            [
                *model,
                "data=cityscapes",
                f"data.root={root}",
                f"data.crop_size={crop}",
                f"data.batch_size={model_batch}",
            ],
            Path(tmp) / "run",
        )
        city_model = model_rate(crops, max(2, reps - 1))
    rows = {
        "synthetic": (synthetic, syn_rate, syn_workers, syn_model),
        "cityscapes": (city, city_rate, city_workers, city_model),
    }
    return {
        name: {
            "input": list(cfg.data.get("crop_size") or [cfg.data.image_size] * 2),
            "batch_size": cfg.data.batch_size,
            "num_workers": workers,
            "loader_images_per_s": rate,
            "model_images_per_s": consumed,
            # > 1: the loader outpaces the model. With num_workers 0 loading is serial and
            # takes model/loader of each step's time.
            "loader_over_model": round(rate["median"] / consumed["median"], 1),
        }
        for name, (cfg, rate, workers, consumed) in rows.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16, help="Cityscapes scenes (>= batch)")
    parser.add_argument("--size", type=int, default=1024, help="Cityscapes height (width 2x)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--batches", type=int, default=50, help="synthetic batches per pass")
    parser.add_argument("--model-batch", type=int, default=2)
    args = parser.parse_args()
    print(json.dumps(measure(args.images, args.reps, args.batches, args.model_batch, args.size)))


if __name__ == "__main__":
    main()
