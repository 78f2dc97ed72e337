"""Real-world files end to end: 16-bit greyscale and 4-band TIFF folder datasets train with
their channel counts, and `segkit.predict` on a mixed folder writes one mask per image at its
displayed size, never overwriting, with a manifest and a true count."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import tifffile
from PIL import Image

from segkit.run.compose import compose_config
from tests.conftest import TINY_OVERRIDES
from tests.unit.test_old_checkpoints import FIXTURES

RNG = np.random.default_rng(1)


def write_pairs(root, suffix, write, count=6, size=(32, 32)):
    """A folder dataset: a bright square (class 1) on a dark background, per image."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for k in range(count):
        labels = np.zeros(size, np.uint8)
        y, x = RNG.integers(0, 16, 2)
        labels[y : y + 12, x : x + 12] = 1
        write(root / "images" / f"s{k}{suffix}", labels)
        Image.fromarray(labels).save(root / "masks" / f"s{k}.png")


@pytest.mark.parametrize("kind", ["grey16", "tiff4"])
def test_deep_and_multi_band_folder_data_trains_with_its_channel_count(tmp_path, kind, caplog):
    """The folder preset as it is: its RGB-only ColorJitter is replaced by a band-agnostic
    brightness/contrast jitter for 4 bands (logged), kept for 1 band (it takes 1)."""
    import albumentations as A

    from segkit.train import train

    def grey16(path, labels):  # 16-bit: the classes differ below the 8-bit range too
        Image.fromarray(labels.astype(np.uint16) * 40000 + 9000).save(path)

    def tiff4(path, labels):
        bands = RNG.integers(0, 20000, (*labels.shape, 4)).astype(np.uint16)
        bands[..., 3] += labels.astype(np.uint16) * 30000  # the 4th band carries the class
        tifffile.imwrite(path, bands, photometric="minisblack")

    channels = 1 if kind == "grey16" else 4
    write_pairs(tmp_path / "data", ".png" if kind == "grey16" else ".tif", locals()[kind])
    cfg = compose_config(
        "train",
        [*(o for o in TINY_OVERRIDES if not o.startswith("data.")), "data=folder",
         f"data.root={tmp_path / 'data'}",
         f"data.in_channels={channels}", "data.crop_size=[32,32]", "data.num_workers=0",
         "data.batch_size=2", "data.val_fraction=0.34", "logger=csv", "test=false"],
        tmp_path / "run",
    )  # fmt: skip
    with caplog.at_level("INFO"):
        datamodule = __import__("hydra").utils.instantiate(cfg.data, _convert_="all")
    kinds = [type(t).__name__ for t in datamodule.train_transform.transforms]
    jitter = "RandomBrightnessContrast" if channels == 4 else "ColorJitter"
    assert kinds == ["RandomScale", "RandomCrop", "HorizontalFlip", jitter]
    logged = "data.train_transform for 4-band images: ColorJitter replaced by RandomBright"
    assert (logged in caplog.text) == (channels == 4)
    if channels == 4:
        assert isinstance(datamodule.train_transform.transforms[3], A.RandomBrightnessContrast)
    dataset = datamodule.dataset("train")
    assert dataset[0]["image"].shape == (channels, 32, 32)  # not tripled, every band kept
    image, _ = dataset.read(0)  # as read, before augmentation: 16 bits scaled to [0, 1]
    path = dataset.images[0]
    raw = tifffile.imread(path) if kind == "tiff4" else np.asarray(Image.open(path))
    np.testing.assert_allclose(image, raw.reshape(32, 32, channels) / 65535, atol=1e-7)
    metrics = train(cfg)
    assert 0.0 <= metrics["val/miou"] <= 1.0
    from segkit.run.from_checkpoint import load_task

    task, _ = load_task(tmp_path / "run" / "checkpoints" / "best.ckpt")
    first_conv = next(m for m in task.net.modules() if hasattr(m, "in_channels"))
    assert first_conv.in_channels == channels


def test_predict_on_a_mixed_folder_writes_one_mask_per_image(tmp_path, capsys):
    from segkit.predict import predict

    photo = np.asarray(Image.open(FIXTURES / "scene.png"))  # 64 x 96
    images = tmp_path / "in"
    images.mkdir()
    Image.fromarray(photo).save(images / "photo.webp", lossless=True)
    Image.fromarray(photo).save(images / "photo.tif")
    Image.fromarray(photo).save(images / "photo.bmp")
    exif = Image.Exif()
    exif[0x0112] = 6  # a phone photo held upright: displayed 96 x 64
    Image.fromarray(photo).save(images / "phone.jpg", exif=exif, quality=95)
    Image.fromarray(photo[..., 0]).save(images / "grey.png")
    (images / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    overrides = [f"ckpt_path={FIXTURES / 'unet.ckpt'}", f"input={images}", "format=index",
                 "precision=32-true", "device=cpu"]  # fmt: skip

    out = tmp_path / "stopped"
    with pytest.raises(ValueError, match=r"zz_broken\.png.*predictions written so far are kept"):
        predict(compose_config("predict", [*overrides, f"output={out}"]))
    assert len(list(out.glob("*.png"))) == 5  # every image before the bad one (sorted) is kept

    out = tmp_path / "out"
    written = predict(compose_config("predict", [*overrides, f"output={out}", "on_bad_image=skip"]))
    err = capsys.readouterr().err  # a plain line per skipped file, no warning source line
    skipped = [line for line in err.splitlines() if line.startswith("segkit: skipped ")]
    assert len(skipped) == 1 and "zz_broken.png" in skipped[0] and "Warning" not in err
    expected = {"photo.webp.png", "photo.tif.png", "photo.bmp.png", "phone.png", "grey.png"}
    assert {p.name for p in written} == expected == {p.name for p in out.glob("*.png")}
    assert np.asarray(Image.open(out / "phone.png")).shape == (96, 64)  # the displayed size
    for name in ("photo.webp.png", "photo.tif.png", "photo.bmp.png", "grey.png"):
        assert np.asarray(Image.open(out / name)).shape == (64, 96)
    same = np.asarray(Image.open(out / "photo.tif.png")) == np.asarray(
        Image.open(out / "photo.bmp.png")
    )
    assert same.all()  # lossless copies of one picture: one prediction
    with open(out / "predict_manifest.csv") as f:
        rows = {r["input"].rsplit("/", 1)[-1]: r for r in csv.DictReader(f)}
    assert len(rows) == 6 and rows["zz_broken.png"]["output"] == ""
    assert "cannot read" in rows["zz_broken.png"]["error"]
    assert rows["photo.webp"]["output"].endswith("photo.webp.png")
