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

from segkit.data.image_files import ImageFileError, find_images, read_rgb
from segkit.run.checkpoints import CheckpointError
from segkit.run.compose import CONF_DIR
from segkit.run.config_checks import ConfigError, check_required

SEMANTIC_FORMATS = ("index", "color", "overlay", "cityscapes")
INSTANCE_FORMATS = ("coco",)


def predict(cfg: DictConfig) -> list[Path]:
    """Write the predictions of every input image; return the written files."""
    from segkit.run.from_checkpoint import load_task
    from segkit.run.loaded_model import LoadedModel
    from segkit.run.precision import inference_device, resolve_precision

    device = inference_device(cfg.device)
    precision = resolve_precision(cfg.precision, device.split(":")[0])
    task, ckpt_cfg = load_task(cfg.ckpt_path, precision, inference=cfg.inference)
    model = LoadedModel(task, ckpt_cfg, device, precision)
    formats = INSTANCE_FORMATS if model.family == "instance" else SEMANTIC_FORMATS
    if cfg.format not in formats:
        article = "an" if model.family[0] in "aeiou" else "a"
        raise CheckpointError(
            f"format={cfg.format}: {article} {model.family} model writes {' | '.join(formats)}"
        )
    source, out = Path(cfg.input), Path(cfg.output)
    images = find_images(source)
    root = source if source.is_dir() else source.parent
    out.mkdir(parents=True, exist_ok=True)
    job = _predict_instances if model.family == "instance" else _predict_semantic
    return job(model, cfg, images, root, out)


def _predict_semantic(model, cfg, images, root, out) -> list[Path]:
    import torch
    from tqdm import tqdm

    from segkit.formats.writers import SemanticWriter

    data = model.config.data
    if int(data.get("in_channels", 3)) != 3:
        raise CheckpointError("segkit.predict reads RGB images; this model takes other channels")
    if cfg.format == "cityscapes" and int(data.num_classes) != 19:
        raise CheckpointError("format=cityscapes needs a 19-class Cityscapes (trainId) model")
    writer = SemanticWriter(out, cfg.format, data.get("palette"), cfg.overlay_alpha)
    written: list[Path] = []

    def flush(batch: list) -> None:
        x = torch.stack([torch.from_numpy(rgb) for _, rgb in batch]).to(model.device)
        for (path, rgb), pred in zip(batch, model.class_maps(x), strict=True):
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


def _predict_instances(model, cfg, images, root, out) -> list[Path]:
    from tqdm import tqdm

    from segkit.formats.writers import InstanceWriter

    ids = model.config.data.get("category_ids")
    writer = InstanceWriter(out, model.class_names[1:], ids, cfg.overlay_alpha)
    for image_id, path in enumerate(tqdm(images, desc="segkit predict", unit="image"), 1):
        rgb = read_rgb(path)
        detections = model.detections(rgb, cfg.score_threshold)
        writer.add(image_id, path.relative_to(root), rgb, detections)
    return writer.finish()


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="predict")
def main(cfg: DictConfig) -> None:
    try:
        check_required(cfg, "ckpt_path", "input", "output")
        written = predict(cfg)
    except (ConfigError, CheckpointError, ImageFileError) as err:
        print(f"segkit: {err}", file=sys.stderr)
        sys.exit(2)
    print(f"segkit: wrote {len(written)} files to {cfg.output}")


if __name__ == "__main__":
    main()
