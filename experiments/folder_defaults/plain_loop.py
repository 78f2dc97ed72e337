"""The plain PyTorch loop the folder preset's defaults are measured against: the same U-Net and
the same data, Adam at 1e-3, random crop and flip, no scheduler, the final weights scored.

    python experiments/folder_defaults/plain_loop.py --root DATA --epochs 50 --crop 256 256 \
        --in-channels 1 --mask-format binary --num-classes 2 --seed 0

Prints a JSON line with the validation mIoU and seconds. Only the data reading is segkit's
(`segkit.data.folder.FolderDataModule`, so both arms read identical pixels); the training
loop and the scoring are a hand-written loop of about 40 lines.
"""

from __future__ import annotations

import argparse
import json
import time

import albumentations as A
import segmentation_models_pytorch as smp
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader

from segkit.data.folder import FolderDataModule


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--crop", type=int, nargs=2, default=[512, 512])
    parser.add_argument("--in-channels", type=int, default=3)
    parser.add_argument("--num-classes", type=int, default=2)
    parser.add_argument("--mask-format", default="index")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    start = time.perf_counter()
    torch.manual_seed(args.seed)
    crop = A.Compose([
        A.RandomCrop(*args.crop, pad_if_needed=True, fill=0, fill_mask=255),
        A.HorizontalFlip(p=0.5),
    ])  # fmt: skip
    pad = A.Compose([A.PadIfNeeded(None, None, pad_height_divisor=32, pad_width_divisor=32,
                                   position="top_left", fill=0, fill_mask=255)])  # fmt: skip
    data = FolderDataModule(
        args.root, num_classes=args.num_classes, mask_format=args.mask_format,
        class_names=[str(c) for c in range(args.num_classes)],
        palette=[[c, c, c] for c in range(args.num_classes)],
        in_channels=args.in_channels, train_transform=crop, val_transform=pad, num_workers=0,
    )  # fmt: skip
    train = DataLoader(data.dataset("train"), args.batch_size, shuffle=True, drop_last=True)
    model = smp.Unet("resnet18", encoder_weights=None, in_channels=args.in_channels,
                     classes=args.num_classes, decoder_channels=[128, 64, 32, 16, 16])  # fmt: skip
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(args.epochs):
        model.train()
        for batch in train:
            loss = F.cross_entropy(model(batch["image"]), batch["mask"], ignore_index=255)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    confusion = torch.zeros(args.num_classes, args.num_classes, dtype=torch.long)
    with torch.no_grad():
        for sample in DataLoader(data.dataset("val"), batch_size=1):
            predicted, mask = model(sample["image"]).argmax(1), sample["mask"]
            keep = mask != 255
            confusion += torch.bincount(
                mask[keep] * args.num_classes + predicted[keep], minlength=args.num_classes**2
            ).view(args.num_classes, args.num_classes)
    intersection = confusion.diag().double()
    union = confusion.sum(0) + confusion.sum(1) - confusion.diag()
    present = union > 0  # classes absent from labels and predictions leave the mean, as segkit's
    miou = (intersection[present] / union[present]).mean().item()
    print(json.dumps({"val_miou": miou, "seconds": round(time.perf_counter() - start, 1)}))


if __name__ == "__main__":
    main()
