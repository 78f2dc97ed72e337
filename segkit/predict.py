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

from segkit.data.image_files import ImageFileError, find_images, output_names
from segkit.formats.prediction_manifest import Manifest, read_or_skip
from segkit.run.checkpoints import CheckpointError
from segkit.run.compose import CONF_DIR
from segkit.run.config_checks import ConfigError, check_required
from segkit.run.group_choices import exit_on_unknown_choice
from segkit.run.quiet import quiet_third_parties

SEMANTIC_FORMATS = ("index", "color", "overlay", "cityscapes")
INSTANCE_FORMATS = ("coco",)


def predict(cfg: DictConfig) -> list[Path]:
    """Write the predictions of every input image and ``predict_manifest.csv``; return the
    written prediction files."""
    from segkit.run.loaded_model import load_model

    if cfg.on_bad_image not in ("error", "skip"):
        raise ConfigError(f"on_bad_image={cfg.on_bad_image}: expected error or skip")
    model = load_model(
        cfg.ckpt_path, cfg.device, cfg.precision, cfg.inference, cfg.exif_orientation
    )
    formats = INSTANCE_FORMATS if model.family == "instance" else SEMANTIC_FORMATS
    if cfg.format not in formats:
        article = "an" if model.family[0] in "aeiou" else "a"
        raise CheckpointError(
            f"format={cfg.format}: {article} {model.family} model writes {' | '.join(formats)}"
        )
    if cfg.format == "cityscapes" and int(model.config.data.num_classes) != 19:
        raise CheckpointError("format=cityscapes needs a 19-class Cityscapes (trainId) model")
    source, out = Path(cfg.input), Path(cfg.output)
    images = find_images(source)
    root = source if source.is_dir() else source.parent
    names = output_names([p.relative_to(root) for p in images])
    out.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(out / "predict_manifest.csv")
    try:
        job = _predict_instances if model.family == "instance" else _predict_semantic
        job(model, cfg, images, root, names, out, manifest)
    finally:  # also when a bad image stops the run: what was written stays listed
        manifest.close()
    if manifest.skipped:
        print(f"segkit: skipped {manifest.skipped} unreadable images (on_bad_image=skip)")
    return manifest.outputs


def _predict_semantic(model, cfg, images, root, names, out, manifest) -> None:
    from tqdm import tqdm

    from segkit.data.image_reader import display_rgb
    from segkit.formats.writers import SemanticWriter

    data = model.config.data
    writer = SemanticWriter(out, cfg.format, data.get("palette"), cfg.overlay_alpha)

    def flush(batch: list) -> None:
        if not batch:
            return
        maps = model.class_maps([image for _, image in batch])
        for (path, image), classes in zip(batch, maps, strict=True):
            name = names[path.relative_to(root)]
            manifest.add(path, writer.write(name, classes, display_rgb(image)))

    pending: list = []  # consecutive images of one size, batched up to batch_size
    for path in tqdm(images, desc="segkit predict", unit="image"):
        try:
            image = read_or_skip(model, path, cfg.on_bad_image, manifest)
        except ImageFileError:
            flush(pending)  # what was read before the bad file is written, then the stop
            raise
        if image is None:
            continue
        if pending and (image.shape != pending[0][1].shape or len(pending) == cfg.batch_size):
            flush(pending)
            pending = []
        pending.append((path, image))
    if pending:
        flush(pending)


def _predict_instances(model, cfg, images, root, names, out, manifest) -> None:
    from tqdm import tqdm

    from segkit.data.image_reader import display_rgb
    from segkit.formats.writers import InstanceWriter

    ids = model.config.data.get("category_ids")
    writer = InstanceWriter(out, model.class_names[1:], ids, cfg.overlay_alpha)
    for image_id, path in enumerate(tqdm(images, desc="segkit predict", unit="image"), 1):
        image = read_or_skip(model, path, cfg.on_bad_image, manifest)
        if image is None:
            continue
        detections = model.detections(image, cfg.score_threshold)
        relative = path.relative_to(root)
        rgb = display_rgb(image)
        manifest.add(path, writer.add(image_id, relative, names[relative], rgb, detections))
    manifest.outputs += writer.finish()[-2:]  # coco_results.json, coco_images.json


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="predict")
def main(cfg: DictConfig) -> None:
    quiet_third_parties(bool(cfg.get("verbose", False)))
    try:
        check_required(cfg, "ckpt_path", "input", "output")
        written = predict(cfg)
    except (ConfigError, CheckpointError, ImageFileError) as err:
        print(f"segkit: {err}", file=sys.stderr)
        sys.exit(2)
    listed = Path(cfg.output) / "predict_manifest.csv"
    print(f"segkit: wrote {len(written)} files to {cfg.output} (their inputs: {listed})")


if __name__ == "__main__":
    exit_on_unknown_choice(sys.argv[1:], CONF_DIR)  # model=unett: one line, closest names
    main()
