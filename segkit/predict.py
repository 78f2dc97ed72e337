"""`python -m segkit.predict ckpt_path=... input=IMAGE_OR_DIR output=DIR format=...`.

Semantic and adversarial models write, per image (same relative path as in `input`):
``index`` class-index PNGs, ``color`` PNGs in the dataset palette, ``overlay`` the image
blended with the colours, ``cityscapes`` ``<name>_pred_labelIds.png`` with official labelIds
(19-class Cityscapes models). Instance models (``format=coco``) write ``coco_results.json``
(RLE masks; ``coco_images.json`` maps its image ids to files) and an overlay per image.
Images of any size: they are padded to the network's size divisor and the logits cropped back.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from segkit.checkpoints import CheckpointError, model_kind
from segkit.config_checks import ConfigError, check_required
from segkit.train import CONF_DIR

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
SEMANTIC_FORMATS = ("index", "color", "overlay", "cityscapes")
INSTANCE_FORMATS = ("coco",)


def find_images(source: Path) -> list[Path]:
    """`source` itself, or the images under the directory `source` (sorted)."""
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise CheckpointError(f"input={source}: no such file or directory")
    images = sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise CheckpointError(f"input={source}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return images


def read_rgb(path: Path):
    """uint8 [H,W,3]; CheckpointError naming the file if it cannot be decoded."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError) as err:
        raise CheckpointError(f"{path}: not a readable image ({err})") from err


def predict(cfg: DictConfig) -> list[Path]:
    """Write the predictions of every input image; return the written files."""
    from segkit.utils.from_checkpoint import load_task

    task, ckpt_cfg = load_task(cfg.ckpt_path)
    kind = model_kind(ckpt_cfg)
    formats = INSTANCE_FORMATS if kind == "instance" else SEMANTIC_FORMATS
    if cfg.format not in formats:
        article = "an" if kind[0] in "aeiou" else "a"
        raise CheckpointError(
            f"format={cfg.format}: {article} {kind} model writes {' | '.join(formats)}"
        )
    source, out = Path(cfg.input), Path(cfg.output)
    images = find_images(source)
    root = source if source.is_dir() else source.parent
    out.mkdir(parents=True, exist_ok=True)
    if kind == "instance":
        return _predict_instances(task, ckpt_cfg, cfg, images, root, out)
    return _predict_semantic(task, ckpt_cfg, cfg, images, root, out)


def _device_and_autocast(cfg: DictConfig):
    import torch

    from segkit.utils.precision import autocast_dtype, resolve_precision

    device = cfg.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    kind = torch.device(device).type
    dtype = autocast_dtype(resolve_precision(cfg.precision, kind))
    enabled = dtype is not None
    return torch.device(device), torch.autocast(kind, dtype=dtype, enabled=enabled), enabled


def _predict_semantic(task, ckpt_cfg, cfg, images, root, out) -> list[Path]:
    import torch
    from tqdm import tqdm

    from segkit.data.transforms import IMAGENET_MEAN, IMAGENET_STD
    from segkit.inference import InferenceOptions
    from segkit.writers import SemanticWriter

    data = ckpt_cfg.data
    if int(data.get("in_channels", 3)) != 3:
        raise CheckpointError("segkit.predict reads RGB images; this model takes other channels")
    if cfg.format == "cityscapes" and int(data.num_classes) != 19:
        raise CheckpointError("format=cityscapes needs a 19-class Cityscapes (trainId) model")
    device, autocast, mixed = _device_and_autocast(cfg)
    task.to(device)
    if mixed:
        task.memory_format = torch.channels_last
        task.net.to(memory_format=torch.channels_last)
    task.inference = InferenceOptions(**cfg.inference)
    mean = torch.tensor(data.get("mean", IMAGENET_MEAN), device=device).view(1, 3, 1, 1) * 255
    std = torch.tensor(data.get("std", IMAGENET_STD), device=device).view(1, 3, 1, 1) * 255
    writer = SemanticWriter(out, cfg.format, data.get("palette"), cfg.overlay_alpha)
    written: list[Path] = []

    def flush(batch: list) -> None:
        x = torch.stack([torch.from_numpy(rgb) for _, rgb in batch]).to(device)
        x = (x.permute(0, 3, 1, 2).float() - mean) / std
        with torch.no_grad(), autocast:
            classes = padded_logits(task, x).argmax(1).to(torch.uint8).cpu().numpy()
        for (path, rgb), pred in zip(batch, classes, strict=True):
            written.append(writer.write(path.relative_to(root), pred, rgb))

    pending: list = []  # consecutive images of one size, batched up to batch_size
    for path in tqdm(images, desc="segkit predict", unit="image"):
        rgb = read_rgb(path)
        if pending and (rgb.shape != pending[0][1].shape or len(pending) == cfg.batch_size):
            flush(pending)
            pending = []
        pending.append((path, rgb))
    if pending:
        flush(pending)
    return written


def padded_logits(task, images):
    """`task.predict_logits` of images of any size: padded bottom/right to the network's size
    divisor, logits cropped back to [B,K,H,W]."""
    import torch.nn.functional as F

    from segkit.models.input_size import input_size_divisor

    divisor = input_size_divisor(task.net)
    height, width = images.shape[-2:]
    pad_h, pad_w = -height % divisor, -width % divisor
    if pad_h or pad_w:
        images = F.pad(images, (0, pad_w, 0, pad_h))
    return task.predict_logits(images)[..., :height, :width]


def _predict_instances(task, ckpt_cfg, cfg, images, root, out) -> list[Path]:
    import torch
    from tqdm import tqdm

    from segkit.writers import InstanceWriter

    device, autocast, _ = _device_and_autocast(cfg)
    task.to(device)
    data = ckpt_cfg.data
    names = list(data.get("instance_class_names") or data.get("class_names") or [])
    writer = InstanceWriter(out, names[1:], data.get("category_ids"), cfg.overlay_alpha)
    for image_id, path in enumerate(tqdm(images, desc="segkit predict", unit="image"), 1):
        rgb = read_rgb(path)
        x = torch.from_numpy(rgb).to(device).permute(2, 0, 1).float() / 255
        with torch.no_grad(), autocast:
            detections = task([x])[0]
        keep = detections["scores"] >= cfg.score_threshold
        detections = {k: v[keep].cpu() for k, v in detections.items()}
        writer.add(image_id, path.relative_to(root), rgb, detections)
    return writer.finish()


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="predict")
def main(cfg: DictConfig) -> None:
    try:
        check_required(cfg, "ckpt_path", "input", "output")
        written = predict(cfg)
    except (ConfigError, CheckpointError) as err:
        print(f"segkit: {err}", file=sys.stderr)
        sys.exit(2)
    print(f"segkit: wrote {len(written)} files to {cfg.output}")


if __name__ == "__main__":
    main()
