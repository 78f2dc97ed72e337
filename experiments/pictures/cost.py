"""What the run-dir pictures cost: the seconds `RunPictures` spends per validation (predicting
its fixed images, drawing the grid, writing the PNG) against the seconds of a default training
epoch (`time/epoch_s`: 100 steps of 16 images at 64x64 plus the validation of 200 images),
measured in the same run.

    python experiments/pictures/cost.py [--epochs 3]

With `logger=csv` (the worst case: with W&B the panels and the grid share one prediction
pass). Prints one JSON line; the goal is under 2% of an epoch.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "experiments" / "throughput"))

from common import compose_run  # noqa: E402
from hydra.utils import instantiate  # noqa: E402

from segkit.callbacks.run_pictures import RunPictures  # noqa: E402
from segkit.run.build import build_task, build_trainer  # noqa: E402


def measure(epochs: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        overrides = [
            "logger=csv",
            f"trainer.max_epochs={epochs}",
            "trainer.enable_progress_bar=false",
        ]
        cfg = compose_run(overrides, run_dir)
        datamodule = instantiate(cfg.data, _convert_="all")
        task = build_task(cfg)
        trainer, _ = build_trainer(cfg)
        (pictures,) = [c for c in trainer.callbacks if isinstance(c, RunPictures)]
        seconds: list[float] = []
        original = pictures.on_validation_end

        def timed(trainer, pl_module) -> None:
            start = time.perf_counter()
            original(trainer, pl_module)
            if trainer.state.fn == "fit" and not trainer.sanity_checking:
                seconds.append(time.perf_counter() - start)

        pictures.on_validation_end = timed
        trainer.fit(task, datamodule=datamodule)
        with open(run_dir / "csv" / "metrics.csv") as f:
            epoch_s = [float(r["time/epoch_s"]) for r in csv.DictReader(f) if r.get("time/epoch_s")]
        grids = sorted(p.name for p in (run_dir / "samples").glob("*.png"))
    share = [100 * p / e for p, e in zip(seconds, epoch_s, strict=True)]
    return {
        "epochs": epochs,
        "epoch_s": [round(s, 2) for s in epoch_s],
        "pictures_s": [round(s, 3) for s in seconds],
        "pictures_pct_of_epoch": [round(s, 2) for s in share],
        "max_pct": round(max(share), 2),
        "grids": grids,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    print(json.dumps(measure(parser.parse_args().epochs)))


if __name__ == "__main__":
    main()
