"""The precision matrix: every task family, semi-supervised and domain-adaptation method trains
under 32-true, bf16-mixed and 16-mixed, with gradient clipping and without (a non-finite loss
stops the run), resumes from its checkpoint, and a checkpoint trained under mixed precision
evaluates, predicts and exports.

Each cell is one `segkit.train.train` job in this process (imports paid once per worker) on
tiny inputs: 2 steps with clipping, then a resume for 2 more steps without clipping (the
clip-free path of each precision). The best checkpoint of each family's 16-mixed cell is then
evaluated, predicted with and exported. Emulated bf16 and fp16 are an order of magnitude slower
than fp32 on CPUs without native support, so sizes stay tiny. Nothing here assumes what
``precision: auto`` resolves to, and numbers compared across precisions use tolerances that
hold on CPUs with and without native bf16.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from segkit.run.compose import compose_config

PRECISIONS = ("32-true", "bf16-mixed", "16-mixed")
#: Mask R-CNN at 64 px (not resized) with few proposals and narrow heads: fp16 convolutions and
#: matmuls take PyTorch's slow reference path on CPUs without native fp16.
MASKRCNN = [
    "model=maskrcnn",
    "data.image_size=64",
    "model.net.min_size=64",
    "model.net.max_size=64",
    "model.net.rpn_proposals_train=50",
    "model.net.box_batch_size_per_image=16",
    "model.net.detections_per_img=10",
    "model.net.box_head_size=32",
    "model.net.mask_head_channels=16",
]
#: family -> (overrides, the override that turns clipping on, the one that turns it off)
FAMILIES = {
    "smp": (["model=unet"], "trainer.gradient_clip_val=1.0", "trainer.gradient_clip_val=null"),
    "torchvision_aux": (
        ["model=deeplabv3_tv", "model.net.arch=deeplabv3_mobilenet_v3_large"],
        "trainer.gradient_clip_val=1.0",
        "trainer.gradient_clip_val=null",
    ),
    "luc2016": (["model=unet_gan"], "model.gradient_clip_val=1.0", "model.gradient_clip_val=null"),
    "hung2018": (
        [
            "model=gan",
            "model/method=hung2018",
            "data.labeled_fraction=0.5",
            "model.method.semi_start=0",
        ],
        "model.gradient_clip_val=1.0",
        "model.gradient_clip_val=null",
    ),
    "pix2pix": (["model=pix2pix"], "model.gradient_clip_val=1.0", "model.gradient_clip_val=null"),
    # Weak-to-strong consistency (docs/semi_supervised.md), half the scenes unlabeled; a low
    # threshold so pseudo-labels count from the first steps.
    "fixmatch": (
        ["model=semi", "data.labeled_fraction=0.5", "model.consistency.threshold=0.2"],
        "trainer.gradient_clip_val=1.0",
        "trainer.gradient_clip_val=null",
    ),
    "unimatch": (
        [
            "model=semi",
            "model/method=unimatch",
            "data.labeled_fraction=0.5",
            "model.consistency.threshold=0.2",
            "model.consistency.ema_momentum=0.9",
        ],
        "trainer.gradient_clip_val=1.0",
        "trainer.gradient_clip_val=null",
    ),
    "fixmatch_hung2018": (
        [
            "model=semi",
            "model/method=fixmatch_hung2018",
            "data.labeled_fraction=0.5",
            "model.method.semi_start=0",
        ],
        "model.gradient_clip_val=1.0",
        "model.gradient_clip_val=null",
    ),
    # Domain adaptation (docs/domain_adaptation.md) on data=synthetic_shift (DOMAIN_PAIR): an
    # adversarial method and the mixing one.
    "advent": (
        ["model=adapt", "model/method=advent"],
        "model.gradient_clip_val=1.0",
        "model.gradient_clip_val=null",
    ),
    "dacs": (
        ["model=adapt", "model/method=dacs", "model.method.threshold=0.2"],
        "model.gradient_clip_val=1.0",
        "model.gradient_clip_val=null",
    ),
    # The preset clips at 5.0 (trainer.gradient_clip_val).
    "maskrcnn": (MASKRCNN, "trainer.gradient_clip_val=5.0", "trainer.gradient_clip_val=null"),
}
TINY_DATA = [
    "data.image_size=32",
    "data.train_size=8",  # hung2018 at labeled_fraction 0.5: 2 labeled batches
    "data.val_size=2",
]
#: The same sizes for both domains of the domain-adaptation families.
DOMAIN_PAIR = [
    "data=synthetic_shift",
    *(
        f"data.{domain}.{key.removeprefix('data.')}"
        for domain in ("source", "target")
        for key in TINY_DATA
    ),
]
ADAPTATION = ("advent", "dacs")
TINY = [
    "data.batch_size=2",
    "trainer.limit_train_batches=2",
    "trainer.num_sanity_val_steps=0",
    "trainer.enable_model_summary=false",
    "trainer.enable_progress_bar=false",
    "logger=csv",
    "test=false",
    # A OneCycle schedule cannot be made longer on resume (PyTorch fixes its length); poly can.
    "scheduler=poly",
]


def train_job(run_dir: Path, overrides: list[str]) -> dict[str, float]:
    from segkit.train import train

    return train(compose_config("train", overrides, run_dir))


def checkpoint(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)


def monitored(metrics: dict[str, float]) -> float:
    return metrics["val/mask_map"] if "val/mask_map" in metrics else metrics["val/miou"]


def steps_per_batch(family: str) -> int:
    adversarial = ("luc2016", "hung2018", "pix2pix", "fixmatch_hung2018", "advent")
    return 2 if family in adversarial else 1  # segmenter + discriminator


def train_and_resume(run_dir: Path, family: str, precision: str) -> tuple[dict, dict, dict]:
    """(checkpoint after 2 clipped steps, checkpoint after 2 more unclipped ones, the final
    metrics of the resumed run)."""
    overrides, clip_on, clip_off = FAMILIES[family]
    data = DOMAIN_PAIR if family in ADAPTATION else TINY_DATA
    common = [*data, *TINY, *overrides, f"trainer.precision={precision}"]
    first = train_job(run_dir, [*common, clip_on, "trainer.max_epochs=1"])
    assert math.isfinite(monitored(first))
    stored = checkpoint(run_dir)
    resumed_metrics = train_job(
        run_dir,
        [*common, clip_off, "trainer.max_epochs=2", f"ckpt_path={run_dir}/checkpoints/last.ckpt"],
    )
    assert math.isfinite(monitored(resumed_metrics))
    return stored, checkpoint(run_dir), resumed_metrics


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_trains_clipped_and_resumes_unclipped(tmp_path, family, precision):
    """Under 16-mixed the run's best checkpoint then evaluates, predicts and exports."""
    first, resumed, metrics = train_and_resume(tmp_path / "run", family, precision)
    per_batch = steps_per_batch(family)
    assert first["global_step"] == 2 * per_batch
    assert resumed["global_step"] == 4 * per_batch
    weights = {k: v for k, v in resumed["state_dict"].items() if v.is_floating_point()}
    assert all(torch.isfinite(v).all() for v in weights.values())
    assert all(v.dtype == torch.float32 for v in weights.values())  # fp32 master weights
    changed = [k for k in weights if not torch.equal(weights[k], first["state_dict"][k])]
    # 16-mixed is real fp16 with a GradScaler (also on CPU), whose state the checkpoint keeps;
    # a step whose scaled gradients overflow is skipped and the scale lowered instead.
    scaler_state = resumed.get("ClippableMixedPrecision", {})
    assert ("scale" in scaler_state) == (precision == "16-mixed")
    lowered = scaler_state.get("scale", 2.0**16) < first.get("ClippableMixedPrecision", {}).get(
        "scale", 2.0**16
    )
    assert changed or lowered, "the resumed steps changed no weight"
    assert resumed["segkit_config"]["trainer"]["precision"] == precision
    # every family draws its sample grids (Mask R-CNN: painted instances)
    grids = sorted(p.name for p in (tmp_path / "run" / "samples").glob("*.png"))
    assert grids == ["epoch_000.png", "epoch_001.png"]
    if precision == "16-mixed":
        check_eval_predict_export(tmp_path, family, metrics)


def write_images(folder: Path, count: int = 2) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)).save(folder / f"{i}.png")


def check_eval_predict_export(tmp_path: Path, family: str, trained: dict[str, float]) -> None:
    """The best checkpoint of a 16-mixed run: eval under 16-mixed reproduces the run's
    validation metrics, predict writes a mask per image that agrees with fp32, export matches
    PyTorch."""
    from segkit.eval import evaluate
    from segkit.export import export, run_exported
    from segkit.predict import predict
    from segkit.run.from_checkpoint import load_task

    ckpt = tmp_path / "run" / "checkpoints" / "best.ckpt"

    metrics = evaluate(
        compose_config("eval", [f"ckpt_path={ckpt}", "precision=16-mixed", "device=cpu"]), None
    )
    key = "val/mask_map" if family == "maskrcnn" else "val/miou"
    assert metrics[key] == pytest.approx(trained[key], abs=1e-4)

    write_images(tmp_path / "images")
    instance = family == "maskrcnn"
    fmt = "coco" if instance else "index"
    outputs = {}
    for precision in ("16-mixed", "32-true"):
        out = tmp_path / f"pred-{precision}"
        options = [f"input={tmp_path / 'images'}", f"output={out}", f"format={fmt}"]
        options += [f"ckpt_path={ckpt}", f"precision={precision}", "device=cpu"]
        predict(compose_config("predict", options))
        outputs[precision] = out
    if instance:
        results = json.loads((outputs["16-mixed"] / "coco_results.json").read_text())
        assert isinstance(results, list)
        return  # Mask R-CNN export is refused (documented); eval and predict are its path
    half, full = (
        np.stack([np.asarray(Image.open(outputs[p] / f"{i}.png")) for i in range(2)])
        for p in ("16-mixed", "32-true")
    )
    assert half.shape == full.shape == (2, 64, 96)
    assert (half == full).mean() > 0.95  # fp16 rounding flips only near-tied pixels

    # ONNX for the default family; TorchScript (seconds faster to write) for the others.
    fmt = "onnx" if family == "smp" else "torchscript"
    path = export(compose_config("export", [f"ckpt_path={ckpt}", f"format={fmt}", "check=false"]))
    task, _ = load_task(str(ckpt))
    images = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        expected = task(images)
    torch.testing.assert_close(run_exported(path, fmt, images), expected, rtol=1e-3, atol=1e-3)
