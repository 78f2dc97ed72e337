"""Weak and strong views of unlabeled images, made in the loader (FixMatch, UniMatch).

The weak view is the training pipeline's output (crops, flips: the geometry the labeled images
get too), with a map of the pixels that pipeline padded (``"padding"``: they are left out of the
unsupervised loss, as in UniMatch). Each strong view is one more draw of a photometric
pipeline (``data.strong_transform``: colour jitter, greyscale, blur) on the weak view, so weak
and strong views stay pixel-aligned and a pseudo-label from the weak view fits every strong
view. CutMix, which mixes images, is done by the task (`segkit.tasks.perturbations`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from segkit.data.bad_samples import RaiseBadSamples, SkipBadSamples
from segkit.data.transforms import WorkerSeededTransform

Pipeline = Callable[..., dict[str, Any]]


class StrongViews:
    """albumentations-style transform ``t(image=, mask=)``: the `weak` pipeline (None: the
    image as read), then `num_views` independent draws of `strong` on the weak image, returned
    as ``out["strong"]`` (a list of arrays shaped like ``out["image"]``).

    ``set_random_seed`` (called per loader worker by `WorkerSeededTransform`) seeds both
    pipelines, from different seeds."""

    def __init__(self, weak: Pipeline | None, strong: Pipeline, num_views: int) -> None:
        if num_views < 1:
            raise ValueError(f"strong_views={num_views} is invalid: expected at least 1")
        self.weak, self.strong, self.num_views = weak, strong, num_views

    def set_random_seed(self, seed: int) -> None:
        for offset, pipeline in enumerate((self.weak, self.strong)):
            if hasattr(pipeline, "set_random_seed"):
                pipeline.set_random_seed((seed + offset * 7919) % 2**32)

    def __call__(self, image: Any, mask: Any = None, **extra: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.weak:
            # A map of ones rides along with the weak pipeline: whatever it pads (crops past
            # the border, rotations) takes the mask fill value, so padding is known apart from
            # ignored labels (the unlabeled image's own mask stays hidden).
            inside = np.ones(np.asarray(image).shape[:2], dtype=np.uint8)
            out = dict(self.weak(image=image, mask=mask, masks=[inside], **extra))
            out["padding"] = np.asarray(out.pop("masks")[0]) != 1
        out.setdefault("image", image)
        out.setdefault("mask", mask)
        out["strong"] = [self.strong(image=out["image"])["image"] for _ in range(self.num_views)]
        return out


def view_entries(out: dict[str, Any], normalise: Any) -> dict[str, torch.Tensor]:
    """The sample entries of a `StrongViews` output: ``"strong"`` float32 [V,C,H,W] (each view
    through `normalise`, array [H,W,C] -> tensor [C,H,W]) and ``"padding"`` bool [H,W]."""
    entries = {}
    if out.get("strong") is not None:
        entries["strong"] = torch.stack([normalise(view) for view in out["strong"]])
    if out.get("padding") is not None:
        entries["padding"] = torch.from_numpy(np.ascontiguousarray(out["padding"]))
    return entries


def with_strong_views(
    dataset: Dataset, weak: Pipeline | None, strong: Pipeline, num_views: int
) -> Dataset:
    """A shallow copy of a semantic dataset (`segkit.data.paired.PairedSegmentation`,
    `segkit.data.synthetic.SyntheticScenes`, or one wrapped by `segkit.data.bad_samples`)
    whose samples also carry ``"strong"`` float32 [V,C,H,W]. It shares the original's files
    and scene cache; only its ``transform`` differs."""
    if isinstance(dataset, (RaiseBadSamples, SkipBadSamples)):
        wrapped = copy.copy(dataset)
        wrapped.dataset = with_strong_views(dataset.dataset, weak, strong, num_views)
        return wrapped
    if not hasattr(dataset, "transform"):
        raise TypeError(
            f"{type(dataset).__name__} keeps no `transform`: data.strong_views needs a dataset "
            "whose training pipeline can be replaced (PairedSegmentation, SyntheticScenes)"
        )
    views = copy.copy(dataset)
    views.transform = WorkerSeededTransform(StrongViews(weak, strong, num_views))
    return views
