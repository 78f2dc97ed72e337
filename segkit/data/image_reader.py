"""The one image reader: every dataset, `segkit.data.check`, `segkit.predict`, `segkit.load`
and the bench decode image files through `ImageReader`, so an image means the same pixels in
training, checking, evaluation and prediction.

What it does, in order:

1. **Decode** PNG, JPEG, BMP, WebP with Pillow; TIFF with tifffile (any number of bands,
   contiguous or planar); 16-bit RGB PNG, which Pillow would cut to 8 bits, with OpenCV.
   Palette, CMYK and YCbCr images become RGB; an alpha channel (LA, RGBA, PA) is dropped.
2. **Orient** by the EXIF orientation tag (what every viewer shows; phones write it), unless
   ``exif_orientation=False``. Masks carry no EXIF: they are drawn on the displayed image.
3. **Match channels** to ``in_channels``: equal counts pass; a greyscale image in a 3-channel
   dataset is repeated to RGB (as torchvision does with COCO's grey photos); anything else is
   refused with ValueError naming the file and both counts.
4. **Scale**: 8-bit data stays uint8 (0..255). Deeper integer data becomes float32 in [0, 1]:
   value / (2**bit_depth - 1), where ``bit_depth`` is the file's (16) unless set (e.g. 12 for
   12-bit medical or satellite data stored in 16-bit files); a value above that range is
   refused, never clipped. Float TIFFs are kept as they are (taken to be on the 0..1 scale).
   uint8 and float32 [0, 1] are albumentations' own conventions, so every transform applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

TIFF_SUFFIXES = (".tif", ".tiff")
#: EXIF tag 0x0112 (Orientation).
ORIENTATION_TAG = 0x0112
#: Pillow modes decoded to RGB (alpha dropped) and to one grey channel.
_TO_RGB = {"P", "PA", "RGBA", "RGBX", "RGBa", "CMYK", "YCbCr", "LAB", "HSV"}
_TO_GREY = {"1", "LA", "La"}


@dataclass(frozen=True)
class ImageReader:
    """Decodes image files faithfully (see the module docstring).

    Args:
        in_channels: channels the model takes (``data.in_channels``): 1, 3 or N.
        exif_orientation: apply the EXIF orientation tag.
        bit_depth: significant bits of integer data deeper than 8 bits (None: the file's).
    """

    in_channels: int = 3
    exif_orientation: bool = True
    bit_depth: int | None = None

    def __post_init__(self) -> None:
        if self.in_channels < 1:
            raise ValueError(f"in_channels={self.in_channels} is invalid: expected at least 1")
        if self.bit_depth is not None and not 9 <= self.bit_depth <= 16:
            raise ValueError(
                f"bit_depth={self.bit_depth} is invalid: expected 9..16 (the significant bits "
                "of deeper-than-8-bit data) or null (the file's own depth)"
            )

    def read(self, path: str | Path, where: str = "") -> np.ndarray:
        """[H,W,in_channels]: uint8 for 8-bit files, float32 in [0, 1] for deeper ones.

        OSError names a file that cannot be decoded; ValueError one whose channels do not
        match ``in_channels`` or whose values exceed ``bit_depth``; `where` follows the path in
        the message (a dataset's ``" (sample 3)"``)."""
        path = Path(path)
        try:
            array, orientation = _decode(path)
        except (OSError, ValueError, SyntaxError) as err:  # PIL raises SyntaxError for some
            raise OSError(f"cannot read {path}{where}: {err}") from err
        return self._finished(array, orientation, path)

    def convert(self, image, source: str = "image") -> np.ndarray:
        """What `read` returns, for an in-memory image: a Pillow image (EXIF applied as for
        files) or an array [H,W] / [H,W,C] (uint8, uint16, or float in [0, 1])."""
        from PIL import Image

        if isinstance(image, Image.Image):
            array, orientation = decode_pil(image)
        else:
            array, orientation = np.asarray(image), None
        return self._finished(array, orientation, Path(source))

    def _finished(self, array: np.ndarray, orientation: int | None, path: Path) -> np.ndarray:
        """A decoded array oriented, matched to ``in_channels`` and scaled."""
        if self.exif_orientation and orientation not in (None, 1):
            array = orient(array, orientation)
        array = self._scaled(self._matched(array, path), path)
        return array if array.flags.writeable else array.copy()  # torch wants writable memory

    def _matched(self, array: np.ndarray, path: Path) -> np.ndarray:
        if array.ndim == 2:
            array = array[..., None]
        channels = array.shape[2]
        if channels == self.in_channels:
            return array
        if channels == 1 and self.in_channels == 3:
            return np.repeat(array, 3, axis=2)
        raise ValueError(
            f"{path} has {channels} channel{'s' * (channels != 1)} but data.in_channels="
            f"{self.in_channels}: set data.in_channels={channels} (and model inputs follow), "
            "or convert the file"
        )

    def _scaled(self, array: np.ndarray, path: Path) -> np.ndarray:
        if array.dtype == np.uint8:
            return np.ascontiguousarray(array)
        if array.dtype.kind == "f":
            # Floats are intensities in [0, 1] (the scale deep integer data is brought to);
            # anything else would be normalised into nonsense without a word.
            low, high = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
            if not (np.isfinite(low) and np.isfinite(high)) or low < 0.0 or high > 1.0:
                raise ValueError(
                    f"{path}: {array.dtype} values in [{low:g}, {high:g}]: expected floats in "
                    "[0, 1] (or uint8/uint16 integers); rescale it first"
                )
            return np.ascontiguousarray(array, dtype=np.float32)
        if array.dtype.kind not in "ui" or array.min() < 0 or array.max() > 65535:
            raise ValueError(
                f"{path}: {array.dtype} values in [{array.min()}, {array.max()}]: expected "
                "8- or 16-bit unsigned integers, or floats"
            )
        bits = self.bit_depth or 16
        top = 2**bits - 1
        if array.max() > top:
            raise ValueError(
                f"{path} holds values up to {array.max()}, above data.bit_depth={bits} "
                f"(maximum {top}): set data.bit_depth to the data's real depth (null: 16)"
            )
        return (array.astype(np.float32) / top).astype(np.float32)


def _decode(path: Path) -> tuple[np.ndarray, int | None]:
    """(decoded array [H,W] or [H,W,C] as stored, EXIF orientation or None)."""
    if path.suffix.lower() in TIFF_SUFFIXES:
        return _decode_tiff(path)
    from PIL import Image

    with Image.open(path) as image:
        deep_png = _png_16_bit(image)  # before getexif(), which may decode the image
        if image.mode in ("RGB", "RGBA") and deep_png:
            return _decode_16_bit_png(path), image.getexif().get(ORIENTATION_TAG)
        return decode_pil(image)


def decode_pil(image) -> tuple[np.ndarray, int | None]:
    """(array [H,W] or [H,W,C] of an opened Pillow image, its EXIF orientation or None)."""
    orientation = image.getexif().get(ORIENTATION_TAG)
    mode = image.mode
    if mode in _TO_RGB:
        return np.asarray(image.convert("RGB")), orientation
    if mode in _TO_GREY:
        return np.asarray(image.convert("L")), orientation
    if mode in ("L", "RGB", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        return np.asarray(image), orientation
    if mode == "I":  # 16-bit grey PNGs in older Pillow; checked when scaled
        return np.asarray(image, dtype=np.int64), orientation
    raise ValueError(f"unsupported image mode {mode}")


def _png_16_bit(image) -> bool:
    """True for a 16-bit-per-sample RGB(A) PNG (which Pillow decodes to 8 bits)."""
    if image.format != "PNG" or not image.tile:
        return False
    args = image.tile[0][3]  # the PNG decoder's raw mode, e.g. "RGB;16B"
    rawmode = args if isinstance(args, str) else str(args[0] if args else "")
    return rawmode.endswith(";16B")


def _decode_16_bit_png(path: Path) -> np.ndarray:
    import cv2

    array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if array is None or array.dtype != np.uint16:
        raise OSError("not a readable 16-bit PNG")
    array = array[..., :3]  # BGR(A) -> BGR, alpha dropped
    return np.ascontiguousarray(array[..., ::-1])  # -> RGB


def _decode_tiff(path: Path) -> tuple[np.ndarray, int | None]:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        array = series.asarray()
        axes = series.axes
        tag = tif.pages[0].tags.get("Orientation")
        orientation = int(tag.value) if tag is not None else None
    if array.ndim == 3 and axes[0] in "SC" and axes[-1] not in "SC":
        array = np.moveaxis(array, 0, -1)  # planar [C,H,W] -> [H,W,C]
    if array.ndim not in (2, 3):
        raise ValueError(f"a TIFF of shape {array.shape} ({axes}): expected one 2-D image")
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    return array, orientation


def orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """`array` [H,W,...] as displayed under EXIF `orientation` 1..8 (Pillow's
    ``ImageOps.exif_transpose``)."""
    transforms = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
        8: lambda a: np.rot90(a, 1),
    }
    if orientation not in transforms:
        return array
    return np.ascontiguousarray(transforms[orientation](array))


def display_rgb(array: np.ndarray) -> np.ndarray:
    """uint8 [H,W,3] for pictures of a read image: grey repeated, bands past the third
    dropped, float [0, 1] scaled to 0..255."""
    if array.dtype != np.uint8:
        array = (np.clip(array, 0.0, 1.0) * 255).round().astype(np.uint8)
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return np.ascontiguousarray(array[..., :3])
