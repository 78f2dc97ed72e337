"""The GPU check: one command that tries segkit on a CUDA machine the way users run it, and
measures what only a GPU can tell (`make gpu-check`; docs in experiments/gpu/README.md).

    python experiments/gpu/check.py --out DIR                    # a CUDA machine, < 8 min
    python experiments/gpu/check.py --device cpu --quick --out DIR   # the same steps on CPU

Steps (each is timed and recorded; one failing step does not stop the others):

1. ``default_recipe``: `python -m segkit.train`'s default recipe (U-Net R18, synthetic data,
   ``precision: auto`` = bf16-mixed with channels-last on Ampere and newer), images/s of its
   training epochs and its final val mIoU.
2. ``clipping``: Mask R-CNN (its preset clips), hung2018 and pix2pix with clipping, and U-Net
   under 16-mixed (GradScaler) with clipping and fused AdamW, a few steps each.
3. ``ddp``: ``trainer=ddp trainer.devices=1`` (NCCL, SyncBatchNorm).
4. ``eval_predict_export``: eval, predict and ONNX export of the default recipe's checkpoint.
5. ``matmul_peak``: the bf16 matmul peak (TFLOP/s) of this device, measured now.
6. ``overhead_mfu``: DeepLabV3+ R50 at 512x1024, batch 8, bf16 channels-last: segkit's
   Trainer against a hand-written loop on the same batches (ratio of step times), and the
   model-FLOP utilization (FLOPs counted by PyTorch's FlopCounterMode) against step 5's peak.
7. ``loader``: the Cityscapes-format loader (default pipeline, one worker per core) against
   what step 6's GPU consumes.

Every import is checked first; anything missing is reported in one line (exit 2). Results go
to ``DIR/gpu_check.json``, the log (with tracebacks) to ``DIR/check.log``; the exit status is 1
if a step failed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
REQUIRED = (
    "torch",
    "torchvision",
    "lightning",
    "torchmetrics",
    "hydra",
    "omegaconf",
    "segmentation_models_pytorch",
    "albumentations",
    "pycocotools.coco",
    "timm",
    "onnx",
    "onnxscript",
    "onnxruntime",
    "matplotlib",
    "scipy",
    "PIL",
    "numpy",
    "yaml",
)
OPTIONAL = ("wandb", "tensorboardX")  # the check logs to CSV; recorded, not required


def check_imports() -> dict[str, str]:
    """Import every module the check needs; exit 2 with one line naming what is missing."""
    missing, versions = [], {}
    for name in (*REQUIRED, *OPTIONAL):
        try:
            module = importlib.import_module(name)
        except Exception as err:  # ImportError, or a broken install raising anything
            if name in REQUIRED:
                missing.append(f"{name} ({type(err).__name__}: {err})")
            versions[name] = "missing"
            continue
        versions[name] = str(getattr(module, "__version__", "present"))
    if missing:
        print(
            "gpu-check: missing: " + "; ".join(missing) + ". Prepare the wheels with "
            "`make gpu-wheels` on a machine with network; `make gpu-check` installs them.",
            file=sys.stderr,
        )
        sys.exit(2)
    return versions


class Check:
    """Runs the steps, records their results and timings, writes the JSON and the log."""

    def __init__(self, out: Path, device: str, quick: bool) -> None:
        self.out, self.device, self.quick = out, device, quick
        self.results: dict[str, Any] = {"device": device, "quick": quick, "steps": {}}
        self.log_file = (out / "check.log").open("a")

    def log(self, message: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {message}"
        print(line, flush=True)
        self.log_file.write(line + "\n")
        self.log_file.flush()

    def step(self, name: str, function: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
        self.log(f"{name}: start")
        start = time.perf_counter()
        captured = io.StringIO()
        try:
            with contextlib.redirect_stdout(captured):
                result = function()
            record = {"ok": True, **result}
        except BaseException as err:  # SystemExit from a segkit entry point too
            if isinstance(err, KeyboardInterrupt):
                raise
            record, result = {"ok": False, "error": f"{type(err).__name__}: {err}"}, None
            self.log_file.write(traceback.format_exc())
        self.log_file.write(captured.getvalue())
        record["seconds"] = round(time.perf_counter() - start, 1)
        self.results["steps"][name] = record
        self.log(f"{name}: {'ok' if record['ok'] else 'FAILED'} {json.dumps(record)}")
        self.write()
        return result

    def write(self) -> None:
        path = self.out / "gpu_check.json"
        path.write_text(json.dumps(self.results, indent=2) + "\n")


# ---------------------------------------------------------------- segkit jobs, in this process


def compose(name: str, overrides: list[str], output_dir: Path | None = None):
    """A segkit config composed as its command line composes it."""
    from segkit.run.compose import compose_config

    return compose_config(name, overrides, output_dir)


def train(run_dir: Path, overrides: list[str]) -> dict[str, float]:
    """`python -m segkit.train <overrides>` in this process; returns its final metrics."""
    from segkit.run.config_checks import check_train_config
    from segkit.train import train as segkit_train

    cfg = compose("train", [*overrides, "logger=csv", "test=false"], run_dir)
    check_train_config(cfg)
    return segkit_train(cfg)


class Steps:
    """The check's steps; each returns the numbers it records."""

    def __init__(self, check: Check) -> None:
        self.check, self.out, self.quick = check, check.out, check.quick
        self.accelerator = "gpu" if check.device == "cuda" else "cpu"
        self.base = [f"trainer.accelerator={self.accelerator}", "trainer.enable_progress_bar=false"]
        self.default_ckpt: Path | None = None
        self.gpu_images_per_s: float | None = None
        self.peak_tflops: float | None = None

    def tiny(self) -> list[str]:
        """Small runs (quick mode everywhere; few steps on the GPU)."""
        if self.quick:
            return ["data.image_size=64", "data.train_size=8", "data.val_size=4",
                    "data.batch_size=4", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
                    "trainer.num_sanity_val_steps=0"]  # fmt: skip
        return ["data.train_size=320", "data.val_size=32", "trainer.max_epochs=1",
                "trainer.limit_train_batches=20"]  # fmt: skip

    def environment(self) -> dict[str, Any]:
        import torch

        from segkit.run.precision import resolve_precision

        info: dict[str, Any] = {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "cpu_count": os.cpu_count(),
            "precision_auto": str(resolve_precision("auto", self.accelerator)),
        }
        if self.check.device == "cuda":
            info["gpu"] = torch.cuda.get_device_name(0)
            info["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30)
            info["bf16_supported"] = torch.cuda.is_bf16_supported()
        return info

    def default_recipe(self) -> dict[str, Any]:
        """The default recipe in full (900 steps of 16 images) on the GPU; 2 epochs of 2 steps
        in quick mode. images/s from the epochs after the first (``time/epoch_s``, which
        includes each epoch's validation of 200 images)."""
        import csv

        from segkit.run.precision import resolve_precision

        run_dir = self.out / "default_recipe"
        quick = [
            "data.image_size=64",
            "data.train_size=8",
            "data.val_size=4",
            "data.batch_size=4",
            "trainer.max_epochs=2",
            "trainer.num_sanity_val_steps=0",
        ]
        metrics = train(run_dir, [*self.base, *(quick if self.quick else [])])  # fmt: skip
        with open(run_dir / "csv" / "metrics.csv") as f:
            epoch_s = [float(r["time/epoch_s"]) for r in csv.DictReader(f) if r.get("time/epoch_s")]
        cfg = _resolved(run_dir)
        batches = cfg["trainer"]["limit_train_batches"]
        per_epoch = (
            int(batches) * cfg["data"]["batch_size"]
            if isinstance(batches, int) or batches > 1
            else cfg["data"]["train_size"] // cfg["data"]["batch_size"] * cfg["data"]["batch_size"]
        )
        timed = epoch_s[1:] or epoch_s
        self.default_ckpt = run_dir / "checkpoints" / "best.ckpt"
        return {
            "precision": str(resolve_precision(cfg["trainer"]["precision"], self.accelerator)),
            "epochs": len(epoch_s),
            "epoch_s": [round(s, 2) for s in epoch_s],
            "images_per_s": round(per_epoch / (sum(timed) / len(timed)), 1),
            "val_miou": round(metrics["val/miou"], 4),
        }

    def clipping(self) -> dict[str, Any]:
        """Gradient clipping under mixed precision, for each family that clips (and the
        semi-supervised methods)."""
        # Mask R-CNN's preset clips (trainer.gradient_clip_val=5); quick: 64 px, narrow heads.
        small = [
            "model.net.min_size=64",
            "model.net.max_size=64",
            "model.net.box_head_size=32",
            "model.net.mask_head_channels=16",
            "model.net.rpn_proposals_train=50",
            "model.net.box_batch_size_per_image=16",
            "model.net.detections_per_img=10",
        ]
        runs = {
            "maskrcnn": ["model=maskrcnn", *(small if self.quick else [])],
            "hung2018": ["model=gan", "model/method=hung2018", "data.labeled_fraction=0.5",
                         "model.method.semi_start=0", "model.gradient_clip_val=1.0"],
            "pix2pix": ["model=pix2pix", "model.gradient_clip_val=1.0"],
            # weak-to-strong consistency: CutMix boxes and dropout masks made on the CPU,
            # moved to the device; the EMA teacher on the device
            "unimatch_ema": ["model=semi", "model/method=unimatch", "data.labeled_fraction=0.5",
                             "model.consistency.ema_momentum=0.99",
                             "trainer.gradient_clip_val=1.0"],
            "fixmatch_hung2018": ["model=semi", "model/method=fixmatch_hung2018",
                                  "data.labeled_fraction=0.5", "model.method.semi_start=0",
                                  "model.gradient_clip_val=1.0"],
            "unet_fp16_fused": ["model=unet", "trainer.precision=16-mixed",
                                "trainer.gradient_clip_val=1.0", "optimizer.fused=true"],
        }  # fmt: skip
        results = {}
        for name, overrides in runs.items():
            metrics = train(self.out / f"clip_{name}", [*self.base, *self.tiny(), *overrides])
            key = "val/mask_map" if name == "maskrcnn" else "val/miou"
            results[name] = {key: round(metrics[key], 4)}
        return results

    def ddp(self) -> dict[str, Any]:
        trainer = "trainer=ddp" if self.check.device == "cuda" else "trainer=ddp_cpu"
        run_dir = self.out / "ddp"
        metrics = train(run_dir, [*self.base, *self.tiny(), trainer, "trainer.devices=1"])
        cfg = _resolved(run_dir)
        return {
            "strategy": trainer,
            "sync_batchnorm": cfg["trainer"]["sync_batchnorm"],
            "val_miou": round(metrics["val/miou"], 4),
        }

    def eval_predict_export(self) -> dict[str, Any]:
        import numpy as np
        from PIL import Image

        from segkit.eval import evaluate
        from segkit.export import export
        from segkit.predict import predict

        if self.default_ckpt is None or not self.default_ckpt.is_file():
            raise RuntimeError("no checkpoint: the default_recipe step failed")
        ckpt, device = str(self.default_ckpt), self.check.device
        metrics = evaluate(compose("eval", [f"ckpt_path={ckpt}", f"device={device}"]), None)
        images = self.out / "predict_input"
        images.mkdir(exist_ok=True)
        rng = np.random.default_rng(0)
        for i in range(4):
            pixels = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(images / f"{i}.png")
        written = predict(
            compose("predict", [f"ckpt_path={ckpt}", f"input={images}", "format=index",
                                f"output={self.out / 'predict_output'}", f"device={device}"])
        )  # fmt: skip
        captured = io.StringIO()
        with contextlib.redirect_stdout(captured):
            path = export(compose("export", [f"ckpt_path={ckpt}", "format=onnx", "check=true"]))
        check_line = [line for line in captured.getvalue().splitlines() if "check:" in line]
        print(captured.getvalue())
        return {
            "eval_val_miou": round(metrics["val/miou"], 4),
            "predicted_files": len(written),
            "onnx_bytes": path.stat().st_size,
            "onnx_check": check_line[-1].split("check: ", 1)[-1] if check_line else None,
        }

    def matmul_peak(self) -> dict[str, Any]:
        """Best of a few timed bf16 matmuls (n x n), in TFLOP/s."""
        import torch

        n = 256 if self.quick else 8192  # quick: emulated bf16 (AVX2) is ~1000x slower
        device = self.check.device
        a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
        b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
        best = 0.0
        for _ in range(3 if self.quick else 10):
            _sync(device)
            start = time.perf_counter()
            for _ in range(1 if self.quick else 20):
                a @ b
            _sync(device)
            reps = 1 if self.quick else 20
            best = max(best, 2 * n**3 * reps / (time.perf_counter() - start) / 1e12)
        self.peak_tflops = best
        return {"n": n, "bf16_tflops": round(best, 3)}

    def overhead_mfu(self) -> dict[str, Any]:
        """segkit's Trainer and a hand-written loop on the same in-memory batches (on the GPU
        bf16-mixed channels-last; quick: what ``precision: auto`` gives this CPU)."""
        import torch

        from segkit.run.precision import resolve_precision

        size, batch, steps = ((64, 128), 2, 3) if self.quick else ((512, 1024), 8, 30)
        warmup = 1 if self.quick else 5
        overrides = [
            *self.base,
            "model=deeplabv3plus",
            "model.net.encoder_name=resnet50",
            f"data.image_size=[{size[0]},{size[1]}]",
            f"data.batch_size={batch}",
            f"trainer.precision={'auto' if self.quick else 'bf16-mixed'}",
            "logger=csv",
        ]
        cfg = compose("train", overrides, self.out / "overhead")
        batches = _random_batches(batch, size, cfg.data.num_classes, count=2)
        plain_s, flops = _plain_loop(cfg, batches, warmup, steps, self.check.device)
        segkit_s = _segkit_loop(cfg, batches, warmup, steps)
        result = {
            "input": list(size),
            "batch": batch,
            "precision": str(resolve_precision(cfg.trainer.precision, self.accelerator)),
            "plain_step_s": round(plain_s, 4),
            "segkit_step_s": round(segkit_s, 4),
            "segkit_over_plain_speed": round(plain_s / segkit_s, 3),
            "model_tflop_per_step": round(flops / 1e12, 3),
            "images_per_s": round(batch / segkit_s, 2),
        }
        self.gpu_images_per_s = batch / segkit_s
        if self.peak_tflops:
            result["mfu_pct"] = round(100 * flops / segkit_s / 1e12 / self.peak_tflops, 1)
        del batches
        if self.check.device == "cuda":
            torch.cuda.empty_cache()
        return result

    def loader(self) -> dict[str, Any]:
        """Crops/s of the Cityscapes pipeline, one worker per core, vs the GPU's images/s."""
        from hydra.utils import instantiate

        from segkit.data.scenes import SceneSpec
        from segkit.data.synthetic_export import export_scenes

        # 16 rendered scenes (about 1 s each at 1024x2048), each linked under 8 names: 128
        # training images, 16 batches per pass, enough to keep 16 workers busy.
        height, images, copies = (128, 4, 1) if self.quick else (1024, 16, 8)
        workers = min(16, os.cpu_count() or 1) if not self.quick else 2
        root = self.out / "cityscapes"
        spec = SceneSpec(height=height, width=2 * height, num_classes=5, difficulty=0.5)
        export_scenes("cityscapes", root, spec, splits=("train", "val"), num_images=images)
        _link_copies(root, "train", copies)
        crop = [height // 2, height]
        cfg = compose(
            "train",
            ["data=cityscapes", f"data.root={root}", f"data.crop_size={crop}",
             f"data.num_workers={workers}", "data.batch_size=8" if not self.quick else
             "data.batch_size=2"],
            self.out / "loader_run",
        )  # fmt: skip
        datamodule = instantiate(cfg.data, _convert_="all")
        datamodule.setup("fit")
        loader = datamodule.train_dataloader()
        for _ in loader:  # starts the workers
            pass
        count, start = 0, time.perf_counter()
        for _ in range(1 if self.quick else 3):
            for batch in loader:
                count += batch["image"].shape[0]
        rate = count / (time.perf_counter() - start)
        result = {"crop": crop, "num_workers": workers, "crops_per_s": round(rate, 1)}
        if self.gpu_images_per_s:
            result["gpu_images_per_s"] = round(self.gpu_images_per_s, 2)
            result["loader_over_gpu"] = round(rate / self.gpu_images_per_s, 2)
        return result


def _link_copies(root: Path, split: str, copies: int) -> None:
    """Hard-link every scene of a Cityscapes-layout split under `copies` - 1 more frame numbers
    (``<city>_<seq>_<frame>_...``): more images to load, each decoded for real."""
    for folder in ("leftImg8bit", "gtFine"):
        for path in sorted((root / folder / split).glob("*/*.png")):
            city, seq, frame, rest = path.name.split("_", 3)
            for k in range(1, copies):
                os.link(path, path.with_name(f"{city}_{seq}_{int(frame) + 100_000 * k:06d}_{rest}"))


def _resolved(run_dir: Path) -> dict:
    import yaml

    return yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def _random_batches(batch: int, size: tuple[int, int], classes: int, count: int) -> list[dict]:
    import torch

    generator = torch.Generator().manual_seed(0)
    return [
        {
            "image": torch.randn(batch, 3, *size, generator=generator),
            "mask": torch.randint(0, classes, (batch, *size), generator=generator),
        }
        for _ in range(count)
    ]


def _plain_loop(cfg, batches: list[dict], warmup: int, steps: int, device: str):
    """(seconds per step, FLOPs per step) of the bench's hand-written loop
    (`experiments/throughput/common.PlainLoop`: the same network, loss, optimizer, scheduler,
    precision and memory format as `cfg`) on `device`."""
    from torch.utils.flop_counter import FlopCounterMode

    sys.path.insert(0, str(REPO / "experiments" / "throughput"))
    from common import PlainLoop

    loop = PlainLoop(cfg, batches, total_steps=warmup + 1 + steps, device=device)
    loop.run(warmup)
    counter = FlopCounterMode(display=False)
    with counter:
        loop.step()
    return loop.run(steps) / steps, counter.get_total_flops()


def _segkit_loop(cfg, batches: list[dict], warmup: int, steps: int) -> float:
    """Seconds per step of segkit's task in segkit's Trainer (built as `segkit.train` builds
    them, CSV logger), on the same batches; timed from the first step after `warmup`."""
    import lightning as L
    from torch.utils.data import DataLoader, Dataset

    from segkit.run.build import build_task, build_trainer

    class Cycled(Dataset):
        def __len__(self) -> int:
            return warmup + steps + 1

        def __getitem__(self, index: int) -> dict:
            return batches[index % len(batches)]

    class Timer(L.Callback):
        started = ended = 0.0

        def on_train_batch_start(self, trainer, module, batch, index) -> None:
            if index == warmup:
                _sync(cfg_device)
                Timer.started = time.perf_counter()

        def on_train_batch_end(self, trainer, module, outputs, batch, index) -> None:
            if index == warmup + steps - 1:
                _sync(cfg_device)
                Timer.ended = time.perf_counter()

    cfg_device = "cuda" if cfg.trainer.accelerator == "gpu" else "cpu"
    task = build_task(cfg)
    trainer, _ = build_trainer(cfg)
    trainer.callbacks.append(Timer())
    trainer.fit_loop.max_epochs = 1
    trainer.limit_val_batches = 0
    trainer.fit(task, train_dataloaders=DataLoader(Cycled(), batch_size=None))
    return (Timer.ended - Timer.started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for the results")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a CPU dry run)")
    args = parser.parse_args()
    versions = check_imports()
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu-check: no CUDA device (use --device cpu --quick for a dry run)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(REPO))
    args.out.mkdir(parents=True, exist_ok=True)
    check = Check(args.out, args.device, args.quick)
    check.results["versions"] = versions
    steps = Steps(check)
    started = time.perf_counter()
    check.results["environment"] = steps.environment()
    for name in ("default_recipe", "clipping", "ddp", "eval_predict_export", "matmul_peak",
                 "overhead_mfu", "loader"):  # fmt: skip
        check.step(name, getattr(steps, name))
    check.results["total_seconds"] = round(time.perf_counter() - started, 1)
    check.write()
    failed = [n for n, r in check.results["steps"].items() if not r["ok"]]
    check.log(f"done in {check.results['total_seconds']} s; failed: {failed or 'none'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
