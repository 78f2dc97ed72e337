"""Write synthetic scenes to disk in real dataset layouts, so loaders are tested on real formats.

    python -m segkit.data.synthetic export --format cityscapes|coco|folder OUT_DIR \
        [--splits train val] [--num-images 8] [--image-size 64] [--seed 0]

Layouts written:
- cityscapes: ``leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png`` and
  ``gtFine/<split>/<city>/..._gtFine_{labelIds,instanceIds,color}.png``, with official label
  ids (shapes become "thing" classes: person, car, truck, bicycle, bus, motorcycle; the
  background becomes road) and official instance ids (``labelId * 1000 + k``).
- coco: ``images/<split>/<name>.png`` and ``annotations/instances_<split>.json`` with RLE
  (pycocotools) or polygon masks (RLE for masks with holes, which polygons cannot hold),
  ``iscrowd`` 0, category ids 1..C-1 named after the shapes.
- folder: ``images/<split>/<name>.png`` and ``masks/<split>/<name>.png`` (palette index PNGs).

Each split is the same scene stream the synthetic data module uses for that split and seed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from segkit.data.scenes import CLASS_NAMES, PALETTE, SPLITS, SceneSpec, render_scene, split_seed
from segkit.formats.coco_rle import encode_rle

FORMATS = ("cityscapes", "coco", "folder")

# Synthetic class -> official Cityscapes labelId (and its official colour).
CITYSCAPES_LABEL_IDS = (7, 24, 26, 27, 33, 28, 32)  # road, person, car, truck, bicycle, bus, moto
CITYSCAPES_COLOURS = {
    7: (128, 64, 128),
    24: (220, 20, 60),
    26: (0, 0, 142),
    27: (0, 0, 70),
    33: (119, 11, 32),
    28: (0, 60, 100),
    32: (0, 0, 230),
}
CITYSCAPES_CITIES = {
    "train": ("aachen", "bremen"),
    "val": ("frankfurt", "lindau"),
    "test": ("berlin", "bielefeld"),
}


def export_scenes(
    fmt: str,
    out_dir: Path,
    spec: SceneSpec,
    seed: int = 0,
    splits: tuple[str, ...] = ("train", "val"),
    num_images: int = 8,
    coco_masks: str = "rle",
) -> list[Path]:
    """Write `num_images` scenes per split in layout `fmt` under `out_dir`; return files written.

    Refuses to write into a directory that already has files, so nothing is overwritten.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r} is unknown: expected one of {', '.join(FORMATS)}")
    for split in splits:
        if split not in SPLITS:
            raise ValueError(f"split {split!r} is unknown: expected one of {', '.join(SPLITS)}")
    if coco_masks not in ("rle", "polygon"):
        raise ValueError(f"coco mask encoding {coco_masks!r} is unknown: expected rle or polygon")
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty: export writes into a new or empty dir")
    written: list[Path] = []
    for split in splits:
        scenes = [render_scene(spec, split_seed(seed, split), i) for i in range(num_images)]
        if fmt == "cityscapes":
            written += _write_cityscapes(out_dir, split, scenes)
        elif fmt == "coco":
            written += _write_coco(out_dir, split, scenes, spec, coco_masks)
        else:
            written += _write_folder(out_dir, split, scenes, spec)
    return written


def _save(array: np.ndarray, path: Path, palette: np.ndarray | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array)
    if palette is not None:
        image = image.convert("P")
        image.putpalette(palette.astype(np.uint8).ravel().tolist())
    image.save(path)
    return path


def _write_cityscapes(out_dir: Path, split: str, scenes) -> list[Path]:
    label_lut = np.array(CITYSCAPES_LABEL_IDS, dtype=np.uint8)
    colour_lut = np.zeros((256, 3), dtype=np.uint8)
    for label_id, colour in CITYSCAPES_COLOURS.items():
        colour_lut[label_id] = colour
    files = []
    for i, scene in enumerate(scenes):
        city = CITYSCAPES_CITIES[split][i % 2]
        stem = f"{city}_{i:06d}_000019"
        label_ids = label_lut[scene.mask]
        # Official encoding: stuff pixels hold their labelId, each thing instance labelId*1000+k.
        instance_ids = label_ids.astype(np.uint16)
        for k, (m, label) in enumerate(zip(scene.instance_masks, scene.labels, strict=True)):
            instance_ids[m] = int(label_lut[label]) * 1000 + k
        gt = out_dir / "gtFine" / split / city
        files += [
            _save(scene.image, out_dir / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png"),
            _save(label_ids, gt / f"{stem}_gtFine_labelIds.png"),
            # 16-bit grayscale PNG, like the official instanceIds files.
            _save(instance_ids, gt / f"{stem}_gtFine_instanceIds.png"),
            _save(colour_lut[label_ids], gt / f"{stem}_gtFine_color.png"),
        ]
    return files


def _write_folder(out_dir: Path, split: str, scenes, spec: SceneSpec) -> list[Path]:
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[: spec.num_classes] = PALETTE[: spec.num_classes]
    files = []
    for i, scene in enumerate(scenes):
        name = f"{split}_{i:06d}.png"
        files.append(_save(scene.image, out_dir / "images" / split / name))
        files.append(_save(scene.mask, out_dir / "masks" / split / name, palette=palette))
    return files


def _write_coco(out_dir: Path, split: str, scenes, spec: SceneSpec, masks: str) -> list[Path]:
    files, images, annotations = [], [], []
    for i, scene in enumerate(scenes):
        name = f"{split}_{i:06d}.png"
        files.append(_save(scene.image, out_dir / "images" / split / name))
        image_id = i + 1
        images.append(
            {"id": image_id, "file_name": name, "height": spec.height, "width": spec.width}
        )
        for m, label in zip(scene.instance_masks, scene.labels, strict=True):
            segmentation = encode_rle(m) if masks == "rle" else _polygons_or_rle(m)
            ys, xs = np.nonzero(m)
            x0, y0 = int(xs.min()), int(ys.min())
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": int(label),
                    "segmentation": segmentation,
                    "area": float(m.sum()),
                    "bbox": [x0, y0, int(xs.max()) + 1 - x0, int(ys.max()) + 1 - y0],
                    "iscrowd": 0,
                }
            )
    categories = [
        {"id": c, "name": CLASS_NAMES[c], "supercategory": "shape"}
        for c in range(1, spec.num_classes)
    ]
    path = out_dir / "annotations" / f"instances_{split}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories})
    )
    return [*files, path]


def _polygons_or_rle(mask: np.ndarray) -> list[list[float]] | dict:
    """COCO polygons for the mask; RLE where polygons cannot represent it (COCO polygons
    have no holes, e.g. a ring, and need 3 points, e.g. not a one-pixel-wide sliver)."""
    import cv2

    contours, hierarchy = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE
    )
    has_hole = hierarchy is not None and bool((hierarchy[0][:, 3] >= 0).any())
    polygons = [c.ravel().astype(float).tolist() for c in contours if len(c) >= 3]
    if has_hole or len(polygons) < len(contours) or not polygons:
        return encode_rle(mask)
    return polygons


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m segkit.data.synthetic",
        description="Synthetic scenes on disk in real layouts.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    exp = sub.add_parser("export", help="write scenes in a real dataset layout")
    exp.add_argument("--format", required=True, choices=FORMATS)
    exp.add_argument("out_dir", type=Path)
    exp.add_argument("--splits", nargs="+", default=["train", "val"], choices=SPLITS)
    exp.add_argument("--num-images", type=int, default=8, help="per split")
    exp.add_argument("--image-size", type=int, nargs="+", default=[64], help="H [W]")
    exp.add_argument("--num-classes", type=int, default=5)
    exp.add_argument("--difficulty", type=float, default=0.5)
    exp.add_argument("--seed", type=int, default=0)
    exp.add_argument("--coco-masks", choices=("rle", "polygon"), default="rle")
    args = parser.parse_args(argv)
    h, w = (args.image_size * 2)[:2]
    try:
        spec = SceneSpec(
            height=h, width=w, num_classes=args.num_classes, difficulty=args.difficulty
        )
        files = export_scenes(
            args.format,
            args.out_dir,
            spec,
            args.seed,
            tuple(args.splits),
            args.num_images,
            args.coco_masks,
        )
    except (ValueError, FileExistsError) as err:
        parser.exit(2, f"error: {err}\n")
    print(f"wrote {len(files)} files under {args.out_dir} ({args.format} layout)")
    return 0
