"""Row 1, framework overhead: segkit's task in segkit's Trainer against the hand-written loop.

One process per model. The task, callbacks, loggers (the default W&B offline + CSV) and
Trainer are built by `segkit.run.build.build_task` / `build_trainer` from the composed default
config; both loops get the same in-memory batches (the first batches of the default synthetic
data), the same network initialisation, loss, optimizer, scheduler, precision and threads.

Timing alternates in blocks, inside one `trainer.fit`: from a callback at step boundaries the
plain loop runs its block of steps, so each repetition is (segkit block, plain block, segkit
block without logging) measured back to back. A segkit block is the time between the starts of
its first and of its next block's step: everything Lightning does per step is in it (fetching
the batch, hooks, closure, logging, progress bar). "without logging" makes the task's
``self.log`` calls and the non-finite loss check no-ops, so the difference is what metric
logging costs per step (the semantic task computes no training metrics beyond its loss).

    python overhead_row.py unet_resnet18 [--size 64 --batch 16 --warmup 3 --block 10 --reps 5]

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import lightning as L
from common import (
    MODELS,
    PlainLoop,
    compose_run,
    summary,
    synthetic_batches,
)
from torch.utils.data import DataLoader, Dataset

from segkit.run.build import build_task, build_trainer
from segkit.tracking.wandb_logger import finish_wandb

# Per repetition: these blocks, in this order ("trainer" blocks run inside trainer.fit).
SCHEDULE = (("segkit", "trainer"), ("plain", "loop"), ("segkit_no_logging", "trainer"))


class CycledBatches(Dataset):
    """`length` items cycling through ready-made batches (a loader with batch_size=None)."""

    def __init__(self, batches: list[dict], length: int) -> None:
        self.batches, self.length = batches, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        return self.batches[index % len(self.batches)]


class AlternatingBlocks(L.Callback):
    """Times blocks of `block` Trainer steps and runs the plain loop's blocks between them."""

    def __init__(self, task, plain: PlainLoop, warmup: int, block: int, reps: int) -> None:
        self.task, self.plain = task, plain
        self.warmup, self.block = warmup, block
        self.schedule = [item for _ in range(reps) for item in SCHEDULE]
        self.times: dict[str, list[float]] = {name: [] for name, _ in SCHEDULE}
        self.current: str | None = None
        self.started = 0.0

    @property
    def trainer_steps(self) -> int:
        """Steps the Trainer must run: warm-up, its blocks, and one to close the last block."""
        blocks = sum(1 for _, where in self.schedule if where == "trainer")
        return self.warmup + blocks * self.block + 1

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        now = time.perf_counter()
        step = trainer.global_step
        if step < self.warmup or (step - self.warmup) % self.block:
            return
        if self.current is not None:
            self.times[self.current].append(now - self.started)
            self._logging(on=True)
            self.current = None
        while self.schedule:
            name, where = self.schedule.pop(0)
            if where == "loop":
                self.times[name].append(self.plain.run(self.block))
                continue
            self._logging(on=name == "segkit")
            self.current = name
            break
        self.started = time.perf_counter()

    def _logging(self, on: bool) -> None:
        """Turn the task's per-step logging and non-finite check on (its own methods) or off."""
        for name in ("log", "log_dict", "usable_loss"):
            self.task.__dict__.pop(name, None)
        if not on:
            self.task.log = lambda *args, **kwargs: None
            self.task.log_dict = lambda *args, **kwargs: None
            self.task.usable_loss = lambda loss, parts: True


def measure(model: str, size: int, batch: int, warmup: int, block: int, reps: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        overrides = [
            *MODELS[model],
            f"data.image_size={size}",
            f"data.batch_size={batch}",
            "trainer.limit_val_batches=0",
            "trainer.num_sanity_val_steps=0",
            "trainer.max_epochs=1",
            "test=false",
        ]
        cfg = compose_run(overrides, Path(tmp) / "run")
        L.seed_everything(cfg.seed)
        batches = synthetic_batches(cfg, 4)
        task = build_task(cfg)
        plain = PlainLoop(cfg, batches, warmup + reps * block)
        plain.net.load_state_dict(task.net.state_dict())  # the same initial weights
        timer = AlternatingBlocks(task, plain, warmup, block, reps)
        plain.run(warmup)
        cfg.trainer.max_steps = timer.trainer_steps
        trainer, loggers = build_trainer(cfg)
        trainer.callbacks.append(timer)
        loader = DataLoader(CycledBatches(batches, timer.trainer_steps), batch_size=None)
        trainer.fit(task, train_dataloaders=loader)

        finish_wandb(loggers)  # before the run dir goes
    seg, plain_t, quiet = (timer.times[k] for k in ("segkit", "plain", "segkit_no_logging"))
    images = block * batch
    return {
        "model": model,
        "input": f"{batch}x3x{size}x{size}",
        "setting": plain.setting,
        "block_steps": block,
        "segkit_images_per_s": summary([images / t for t in seg], 2),
        "plain_images_per_s": summary([images / t for t in plain_t], 2),
        # segkit throughput / plain throughput, pair by pair.
        "overhead_ratio": summary([p / s for s, p in zip(seg, plain_t, strict=True)]),
        # Share of a segkit step spent on logging and the non-finite check, pair by pair.
        "logging_pct": summary([100 * (s - q) / s for s, q in zip(seg, quiet, strict=True)], 2),
        "loggers": [type(lg).__name__ for lg in loggers],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(MODELS))
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--block", type=int, default=10)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    row = measure(args.model, args.size, args.batch, args.warmup, args.block, args.reps)
    print(json.dumps(row))


if __name__ == "__main__":
    main()
