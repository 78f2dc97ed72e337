"""Weak and strong views of unlabeled images, made in the loader (FixMatch, UniMatch).

The weak view is the training pipeline's output (crops, flips: the geometry the labeled images
get too). Each strong view is one more draw of a photometric pipeline (``data.strong_transform``:
colour jitter, greyscale, blur) on the weak view, so weak and strong views stay pixel-aligned and
a pseudo-label from the weak view fits every strong view. CutMix, which mixes images of a
batch, is done by the task on the batch (`segkit.tasks.consistency`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

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
        out = dict(self.weak(image=image, mask=mask, **extra)) if self.weak else {}
        out.setdefault("image", image)
        out.setdefault("mask", mask)
        out["strong"] = [self.strong(image=out["image"])["image"] for _ in range(self.num_views)]
        return out


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
