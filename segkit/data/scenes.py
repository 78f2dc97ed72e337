"""Procedural segmentation scenes, rendered with NumPy from ``(seed, index)`` alone.

A scene is a textured, noisy background with a few objects drawn back to front, so objects may
touch and occlude each other. Each object class has its own shape, but colours are shared in
pairs of classes and spread widely within a class, so colour alone cannot separate the classes:
a model has to learn shape. The same scene yields the semantic mask and the instance masks, and
the two always agree (the semantic mask is painted from the visible instance masks).

This module imports only NumPy: the exporter and the tests use it without torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Object shapes, in class order (class 0 is the background). The first four are the most
#: distinct; square and star, look-alikes of disc and cross at small sizes, come with 6-7 classes.
SHAPES = ("disc", "triangle", "ring", "cross", "square", "star")
CLASS_NAMES = ("background", *SHAPES)
#: One display colour per class (background first), used for colour masks and W&B panels.
PALETTE = (
    (0, 0, 0),
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
)
# Mean object colour per class. Classes come in pairs with close means (disc/ring,
# triangle/cross, square/star, ~35 apart) and the spread within a class (20 + 50 * difficulty
# per channel) is larger than that, so colour narrows a pixel down to a pair but the members of
# a pair overlap: telling them apart takes shape.
_CLASS_BASE_COLOUR = np.array(
    [
        (180, 85, 75),  # disc
        (75, 115, 180),  # triangle
        (160, 105, 95),  # ring
        (95, 135, 160),  # cross
        (110, 170, 80),  # square
        (130, 150, 100),  # star
    ],
    dtype=np.float32,
)
# Texture each class prefers (used with probability 0.6; any texture otherwise).
_TEXTURES = ("flat", "stripes", "checker", "blotch")
_CLASS_TEXTURE = ("stripes", "checker", "blotch", "stripes", "checker", "blotch")


SPLITS = ("train", "val", "test")


def split_seed(seed: int, split: str) -> int:
    """Seed of a split's scene stream: distinct per split, so splits never share a scene."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is unknown: expected one of {', '.join(SPLITS)}")
    return seed * len(SPLITS) + SPLITS.index(split)


@dataclass(frozen=True)
class SceneStyle:
    """The look of a domain of scenes: a domain shift keeps the classes, shapes and layout
    statistics and changes these (each default leaves the image as the default style draws
    it, so the same ``(seed, index)`` gives the same layout in every style).

    Args:
        hue_shift: degrees by which every colour (background and objects) is rotated around
            the grey axis: the class colours a model learned no longer hold.
        saturation: scale of every colour's distance from its grey level (below 1: washed out).
        brightness: gain on the image (lighting: below 1 is darker).
        contrast: scale of the distance from mid-grey (128).
        blur: Gaussian blur sigma in pixels (a softer, out-of-focus sensor; 0: none).
        noise: scale of the pixel noise (1: the difficulty's level).
        object_scale: scale of every object's size.
        texture_contrast: scale of the background's and objects' texture contrast.
    """

    hue_shift: float = 0.0
    saturation: float = 1.0
    brightness: float = 1.0
    contrast: float = 1.0
    blur: float = 0.0
    noise: float = 1.0
    object_scale: float = 1.0
    texture_contrast: float = 1.0

    def __post_init__(self) -> None:
        for name in ("saturation", "brightness", "contrast", "object_scale"):
            if getattr(self, name) <= 0:
                raise ValueError(f"style.{name}={getattr(self, name)} is invalid: expected > 0")
        for name in ("blur", "noise", "texture_contrast"):
            if getattr(self, name) < 0:
                raise ValueError(f"style.{name}={getattr(self, name)} is invalid: expected >= 0")


@dataclass(frozen=True)
class SceneSpec:
    """What scenes look like. All fields are plain values so Hydra can set them.

    Args:
        height, width: image size in pixels.
        num_classes: classes including the background, 2..7 (shapes are taken in `SHAPES` order).
        min_objects, max_objects: objects per scene (inclusive range).
        difficulty: 0 (easy) to 1 (hard): colour spread within a class, pixel noise,
            texture contrast and the range of object sizes grow with it.
        style: how the scenes are rendered, the *domain* (`SceneStyle`); the default style is
            the built-in benchmark's look. Changing it changes appearance, not the layout.
    """

    height: int = 128
    width: int = 128
    num_classes: int = 5
    min_objects: int = 2
    max_objects: int = 6
    difficulty: float = 0.5
    style: SceneStyle = field(default_factory=SceneStyle)

    def __post_init__(self) -> None:
        if not 2 <= self.num_classes <= len(CLASS_NAMES):
            raise ValueError(
                f"num_classes={self.num_classes} is not supported by the synthetic scenes: "
                f"expected 2..{len(CLASS_NAMES)} (background + up to {len(SHAPES)} shapes)"
            )
        if self.height < 16 or self.width < 16:
            raise ValueError(f"image size {self.height}x{self.width} is too small: expected >= 16")
        if not 0 <= self.min_objects <= self.max_objects:
            raise ValueError(
                f"objects range [{self.min_objects}, {self.max_objects}] is invalid: "
                "expected 0 <= min_objects <= max_objects"
            )
        if not 0.0 <= self.difficulty <= 1.0:
            raise ValueError(f"difficulty={self.difficulty} is invalid: expected 0..1")


@dataclass
class Scene:
    """One rendered scene.

    Attributes:
        image: uint8 [H, W, 3].
        mask: uint8 [H, W], class index per pixel (0 = background).
        instance_masks: bool [N, H, W], the visible part of each object (N may be 0).
        labels: int64 [N], class index of each object, in 1..num_classes-1.
    """

    image: np.ndarray
    mask: np.ndarray
    instance_masks: np.ndarray
    labels: np.ndarray


def render_scene(spec: SceneSpec, seed: int, index: int) -> Scene:
    """Render scene ``index`` of the stream ``seed``; the same arguments give the same scene."""
    rng = np.random.default_rng([seed, index])
    h, w = spec.height, spec.width
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    image = _background(rng, spec, yy, xx)

    n_objects = int(rng.integers(spec.min_objects, spec.max_objects + 1))
    full_masks, labels = [], []
    for _ in range(n_objects):
        label = int(rng.integers(1, spec.num_classes))
        shape = _shape_mask(rng, SHAPES[label - 1], spec, yy, xx)
        if not shape.any():
            continue
        texture = _object_texture(rng, label, spec, yy, xx)
        image[shape] = texture[shape]
        full_masks.append(shape)
        labels.append(label)

    # Visible part of each object: what no later (nearer) object covers.
    visible, covered = [], np.zeros((h, w), dtype=bool)
    for shape in reversed(full_masks):
        visible.append(shape & ~covered)
        covered |= shape
    visible.reverse()
    keep = [i for i, m in enumerate(visible) if m.any()]
    instance_masks = (
        np.stack([visible[i] for i in keep]) if keep else np.zeros((0, h, w), dtype=bool)
    )
    label_arr = np.array([labels[i] for i in keep], dtype=np.int64)

    mask = np.zeros((h, w), dtype=np.uint8)
    for m, label in zip(instance_masks, label_arr, strict=True):
        mask[m] = label

    image = _restyle(image, spec.style)
    noise_sigma = (3.0 + 15.0 * spec.difficulty) * spec.style.noise
    image = image + rng.normal(0.0, noise_sigma, size=image.shape).astype(np.float32)
    return Scene(
        image=np.clip(image, 0, 255).astype(np.uint8),
        mask=mask,
        instance_masks=instance_masks,
        labels=label_arr,
    )


def _restyle(image: np.ndarray, style: SceneStyle) -> np.ndarray:
    """float [H,W,3] 0..255 scale (before noise) -> the same scene in `style`'s colours,
    lighting and focus."""
    if style.hue_shift or style.saturation != 1.0:
        grey = image.mean(axis=2, keepdims=True)
        chroma = (image - grey) * style.saturation
        # Rotation about the (1,1,1) axis (Rodrigues): a hue rotation of RGB.
        a = np.deg2rad(style.hue_shift)
        axis = np.full(3, 1 / np.sqrt(3), dtype=np.float32)
        cross = np.array(
            [[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]],
            dtype=np.float32,
        )
        rotation = (
            np.cos(a) * np.eye(3) + np.sin(a) * cross + (1 - np.cos(a)) * np.outer(axis, axis)
        ).astype(np.float32)
        image = grey + chroma @ rotation.T
    if style.contrast != 1.0:
        image = 128.0 + (image - 128.0) * style.contrast
    if style.brightness != 1.0:
        image = image * style.brightness
    if style.blur > 0:
        image = _gaussian_blur(image, style.blur)
    return image


def _gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of [H,W,C] with edge padding (NumPy only)."""
    radius = max(1, int(np.ceil(3 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float32)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    kernel /= kernel.sum()
    out = image
    for axis in (0, 1):
        pad = [(0, 0)] * 3
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="edge")
        length = out.shape[axis]
        out = sum(
            w * np.take(padded, np.arange(i, i + length), axis=axis) for i, w in enumerate(kernel)
        )
    return out.astype(np.float32)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [0, 1]: a coarse random grid, bilinearly upsampled."""
    grid = rng.random((cells + 1, cells + 1)).astype(np.float32)
    gy = np.linspace(0, cells, h, dtype=np.float32)
    gx = np.linspace(0, cells, w, dtype=np.float32)
    y0 = np.minimum(gy.astype(int), cells - 1)
    x0 = np.minimum(gx.astype(int), cells - 1)
    fy, fx = (gy - y0)[:, None], (gx - x0)[None, :]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _background(rng, spec: SceneSpec, yy, xx) -> np.ndarray:
    h, w = spec.height, spec.width
    # Background colours come from the same range as object colours, so an object is not
    # found by colour contrast alone.
    c0 = rng.uniform(40, 200, size=3).astype(np.float32)
    c1 = rng.uniform(40, 200, size=3).astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx / w + np.sin(angle) * yy / h + 1.0) / 2.0
    image = c0 * (1 - ramp[..., None]) + c1 * ramp[..., None]
    blotches = _smooth_noise(rng, h, w, cells=int(rng.integers(3, 8))) - 0.5
    image += (30.0 + 50.0 * spec.difficulty) * blotches[..., None]
    kind = _TEXTURES[int(rng.integers(len(_TEXTURES)))]
    contrast = (0.05 + 0.25 * spec.difficulty) * spec.style.texture_contrast
    image *= _texture(rng, kind, contrast, yy, xx)[..., None]
    return image


def _texture(rng, kind: str, contrast: float, yy, xx) -> np.ndarray:
    """Multiplicative intensity pattern around 1.0."""
    if kind == "flat":
        return np.ones_like(xx)
    if kind == "stripes":
        period = rng.uniform(4, 12)
        angle = rng.uniform(0, np.pi)
        phase = (np.cos(angle) * xx + np.sin(angle) * yy) * (2 * np.pi / period)
        return 1.0 + contrast * np.sin(phase)
    if kind == "checker":
        cell = rng.uniform(3, 8)
        parity = (np.floor(xx / cell) + np.floor(yy / cell)) % 2
        return 1.0 + contrast * (2 * parity - 1)
    h, w = xx.shape
    return 1.0 + 2 * contrast * (_smooth_noise(rng, h, w, cells=int(rng.integers(8, 16))) - 0.5)


def _object_texture(rng, label: int, spec: SceneSpec, yy, xx) -> np.ndarray:
    spread = 20.0 + 50.0 * spec.difficulty
    colour = _CLASS_BASE_COLOUR[label - 1] + rng.normal(0.0, spread, size=3).astype(np.float32)
    kind = _CLASS_TEXTURE[label - 1] if rng.random() < 0.6 else _TEXTURES[rng.integers(4)]
    contrast = rng.uniform(0.05, 0.1 + 0.3 * spec.difficulty) * spec.style.texture_contrast
    pattern = _texture(rng, kind, contrast, yy, xx)
    return colour[None, None, :] * pattern[..., None]


def _shape_mask(rng, shape: str, spec: SceneSpec, yy, xx) -> np.ndarray:
    h, w = spec.height, spec.width
    side = min(h, w)
    # Harder scenes have smaller objects (radius as a fraction of the image side).
    r = rng.uniform(0.16 - 0.1 * spec.difficulty, 0.24) * side * spec.style.object_scale
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    theta = rng.uniform(0, 2 * np.pi)
    dy, dx = yy - cy, xx - cx
    # Coordinates in the object's rotated frame.
    u = np.cos(theta) * dx + np.sin(theta) * dy
    v = -np.sin(theta) * dx + np.cos(theta) * dy
    dist = np.hypot(dx, dy)
    if shape == "disc":
        return dist <= r
    if shape == "square":
        s = r * 0.85
        return (np.abs(u) <= s) & (np.abs(v) <= s)
    if shape == "triangle":
        # Equilateral triangle: inside all three edge half-planes at distance r/2 from centre.
        inside = np.ones_like(u, dtype=bool)
        for k in range(3):
            a = theta + k * 2 * np.pi / 3
            inside &= np.cos(a) * dx + np.sin(a) * dy <= r * 0.6
        return inside
    if shape == "ring":
        return (dist <= r) & (dist >= r * 0.55)
    if shape == "cross":
        arm = r / 3
        return ((np.abs(u) <= r) & (np.abs(v) <= arm)) | ((np.abs(u) <= arm) & (np.abs(v) <= r))
    if shape == "star":
        angle = np.arctan2(v, u)
        return dist <= r * (0.6 + 0.4 * np.cos(5 * angle))
    raise ValueError(f"unknown shape {shape!r}: expected one of {SHAPES}")
