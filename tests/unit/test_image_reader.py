"""The one image reader (segkit.data.image_reader): pairs of files whose decoded arrays must
agree (16-bit x257 against 8-bit, EXIF-rotated against physically rotated, RGBA/palette/CMYK
against RGB, multi-band TIFF against its array), and clear refusals."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from segkit.data.image_reader import ImageReader, display_rgb

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (32, 48, 3), dtype=np.uint8)  # JPEG-friendly: multiples of 16
GREY = RGB[..., 0]


def test_16_bit_grey_is_its_8_bit_picture_times_257(tmp_path):
    Image.fromarray(GREY).save(tmp_path / "g8.png")
    Image.fromarray(GREY.astype(np.uint16) * 257).save(tmp_path / "g16.png")
    reader = ImageReader(in_channels=1)
    eight, sixteen = reader.read(tmp_path / "g8.png"), reader.read(tmp_path / "g16.png")
    assert eight.shape == sixteen.shape == (32, 48, 1)  # one channel, not tripled
    assert eight.dtype == np.uint8 and sixteen.dtype == np.float32
    np.testing.assert_allclose(sixteen * 255, eight, atol=1e-3)
    assert sixteen.max() <= 1.0  # never saturated: the 8-bit path would give 255 everywhere


def test_16_bit_rgb_png_is_read_with_all_its_bits(tmp_path):
    import cv2

    deep = RGB.astype(np.uint16) * 257 + 3  # low bits Pillow would drop
    cv2.imwrite(str(tmp_path / "rgb16.png"), deep[..., ::-1])
    got = ImageReader().read(tmp_path / "rgb16.png")
    np.testing.assert_allclose(got, deep / 65535, atol=1e-7)


def test_bit_depth_scales_and_refuses_values_above_it(tmp_path):
    twelve = np.array([[0, 4095], [2048, 1]], np.uint16)
    Image.fromarray(twelve).save(tmp_path / "a.png")
    got = ImageReader(in_channels=1, bit_depth=12).read(tmp_path / "a.png")[..., 0]
    np.testing.assert_allclose(got, twelve / 4095)
    Image.fromarray(twelve * 2).save(tmp_path / "b.png")
    with pytest.raises(
        ValueError, match=r"b\.png holds values up to 8190, above data.bit_depth=12"
    ):
        ImageReader(in_channels=1, bit_depth=12).read(tmp_path / "b.png")


@pytest.mark.parametrize(("orientation", "rotate"), [(3, 2), (6, -1), (8, 1)])
def test_exif_orientation_is_applied_as_viewers_show_it(tmp_path, orientation, rotate):
    exif = Image.Exif()
    exif[0x0112] = orientation
    # Stored pixels R, tagged: displayed, they are R rotated (np.rot90 k=`rotate`).
    Image.fromarray(RGB).save(tmp_path / "tagged.jpg", quality=100, exif=exif)
    Image.fromarray(np.rot90(RGB, rotate)).save(tmp_path / "turned.jpg", quality=100)
    tagged, turned = (
        ImageReader().read(tmp_path / "tagged.jpg"),
        ImageReader().read(tmp_path / "turned.jpg"),
    )
    assert tagged.shape == turned.shape
    assert np.abs(tagged.astype(int) - turned.astype(int)).mean() < 3  # JPEG rounding only
    stored = ImageReader(exif_orientation=False).read(tmp_path / "tagged.jpg")
    assert stored.shape == RGB.shape


def test_alpha_palette_cmyk_webp_bmp_decode_to_their_rgb(tmp_path):
    Image.fromarray(np.dstack([RGB, np.full(GREY.shape, 7, np.uint8)])).save(tmp_path / "a.png")
    quantised = Image.fromarray(RGB).quantize(64)
    quantised.save(tmp_path / "p.png")
    Image.fromarray(RGB).save(tmp_path / "b.bmp")
    Image.fromarray(RGB).save(tmp_path / "w.webp", lossless=True)
    Image.fromarray(RGB).convert("CMYK").save(tmp_path / "c.tif")  # tifffile: 4 raw inks
    Image.fromarray(RGB).convert("CMYK").save(tmp_path / "c.jpg", quality=100)
    reader = ImageReader()
    for name in ("a.png", "b.bmp", "w.webp"):
        assert np.array_equal(reader.read(tmp_path / name), RGB), name
    assert np.array_equal(reader.read(tmp_path / "p.png"), np.asarray(quantised.convert("RGB")))
    cmyk = reader.read(tmp_path / "c.jpg")
    assert cmyk.shape == RGB.shape and np.abs(cmyk.astype(int) - RGB).mean() < 3
    with pytest.raises(ValueError, match=r"c\.tif has 4 channels but data.in_channels=3"):
        reader.read(tmp_path / "c.tif")  # CMYK TIFF: inks are not colours; refused, not guessed
    la = Image.fromarray(np.dstack([GREY, GREY]), mode="LA")
    la.save(tmp_path / "la.png")
    assert np.array_equal(ImageReader(in_channels=1).read(tmp_path / "la.png")[..., 0], GREY)
    # A grey image in an RGB dataset (COCO has some) is repeated, as torchvision does.
    assert np.array_equal(reader.read(tmp_path / "la.png"), np.dstack([GREY] * 3))


@pytest.mark.parametrize("planar", [False, True])
def test_multi_band_tiffs_keep_every_band(tmp_path, planar):
    bands = RNG.integers(0, 65536, (32, 48, 4), dtype=np.uint16)
    stored = np.moveaxis(bands, -1, 0) if planar else bands
    tifffile.imwrite(
        tmp_path / "m.tif",
        stored,
        photometric="minisblack",
        planarconfig="separate" if planar else "contig",
    )
    got = ImageReader(in_channels=4).read(tmp_path / "m.tif")
    np.testing.assert_allclose(got, bands / 65535, atol=1e-7)
    with pytest.raises(ValueError, match=r"m\.tif has 4 channels but data.in_channels=3"):
        ImageReader(in_channels=3).read(tmp_path / "m.tif")
    assert display_rgb(got).shape == (32, 48, 3)


def test_unreadable_files_are_named(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(OSError, match=r"cannot read .*bad\.png"):
        ImageReader().read(tmp_path / "bad.png")
    Image.fromarray(RGB).save(tmp_path / "rgb.png")
    with pytest.raises(ValueError, match=r"rgb\.png has 3 channels but data.in_channels=1"):
        ImageReader(in_channels=1).read(tmp_path / "rgb.png")
