"""Weak-to-strong consistency on unlabeled batches: the unsupervised loss of FixMatch (Sohn et
al. 2020) and UniMatch (Yang et al. 2023) for semantic segmentation, shared by the
semi-supervised task (`segkit.tasks.semi`) and the adversarial one (`segkit.tasks.adversarial`,
where a discriminator can also gate pseudo-labels).

An unlabeled batch (`segkit.data.unlabeled_views`) holds the weak view ``"image"`` float
[B,C,H,W], ``"strong"`` float [B,V,C,H,W] (V strong, photometric views of the same pixels) and
``"padding"`` bool [B,H,W] (pixels the weak pipeline padded). A second unlabeled batch of the
same form, the *partner*, gives CutMix its boxes' contents, as in UniMatch's code.

1. Pseudo-labels: the argmax of the weak view's softmax, from the EMA teacher when there is
   one, else from the segmenter with its dropout off; computed without gradient. The
   partner's come from the segmenter in eval mode (UniMatch). Pixels whose confidence exceeds
   ``threshold`` count (`confident_pixels`); a ``select`` callback (a discriminator) may veto
   some of them.
2. CutMix (Yun et al. 2019): each strong view of image i takes, inside a random box, the
   pixels of the same view of the partner's image i (`cutmix_boxes`, `mix`); its
   pseudo-labels, selected and padded pixels are mixed with the same box.
3. The segmenter sees the mixed strong views; the loss of each is the cross-entropy to the
   pseudo-labels at the selected pixels, summed and divided by the pixels that are not padding
   (UniMatch's normalisation, so few confident pixels mean a small loss, not a noisy one).
4. UniMatch's feature perturbation (``fp_weight`` > 0): the segmenter sees the weak view again
   with dropout (``feature_dropout``, channel-wise) on its encoder's output features
   (`feature_dropout`); its loss against the same pseudo-labels weighs ``fp_weight``, the strong
   views share ``1 - fp_weight``.
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

Forward = Callable[[torch.Tensor], torch.Tensor]
#: How an `EMATeacher`'s batch-norm layers normalise the images it labels.
TEACHER_NORMALIZATIONS = ("running", "batch")
#: (weak-view probabilities [B,C,H,W], weak images [B,C_in,H,W]) -> extra pixels bool [B,H,W].
Selector = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def confident_pixels(
    probs: torch.Tensor, threshold: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(pseudo-labels int64 [B,H,W], confidence [B,H,W], selected bool [B,H,W]) of
    probabilities [B,C,H,W]: the argmax, its probability, and confidence > threshold."""
    confidence, pseudo = probs.max(dim=1)
    return pseudo, confidence, confidence > threshold


def step_generator(step: int, rank: int = 0) -> torch.Generator:
    """The CPU generator of one training step's draws (CutMix boxes, feature dropout): seeded
    from the run's seed (``PL_GLOBAL_SEED``), the step and the DDP rank only, so a resumed run
    draws what the uninterrupted one did, whatever else used torch's global RNG meanwhile (data
    loaders draw from it when they start), on any device."""
    seed = int(os.environ.get("PL_GLOBAL_SEED", 0))
    return torch.Generator().manual_seed((seed * 1_000_003 + step * 7_919 + rank * 104_729) % 2**63)


def cutmix_boxes(
    batch: int,
    height: int,
    width: int,
    prob: float,
    device: torch.device | str = "cpu",
    area: tuple[float, float] = (0.02, 0.4),
    ratio: tuple[float, float] = (0.3, 1 / 0.3),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """bool [B,H,W]: for each image, with probability `prob`, one box of `area` (fraction of
    the image) and aspect `ratio` drawn uniformly, as in UniMatch; all false otherwise. Drawn
    on the CPU from `generator` (default: torch's global RNG), so a run repeats on any device."""
    boxes = torch.zeros(batch, height, width, dtype=torch.bool)
    draws = torch.rand(batch, 5, generator=generator)
    for i in range(batch):
        if draws[i, 0] >= prob:
            continue
        size = (area[0] + (area[1] - area[0]) * draws[i, 1]) * height * width
        aspect = ratio[0] + (ratio[1] - ratio[0]) * draws[i, 2]
        box_w = min(width, max(1, int((size / aspect).sqrt())))
        box_h = min(height, max(1, int((size * aspect).sqrt())))
        top = int(draws[i, 3] * (height - box_h + 1))
        left = int(draws[i, 4] * (width - box_w + 1))
        boxes[i, top : top + box_h, left : left + box_w] = True
    return boxes.to(device)


def mix(values: torch.Tensor, boxes: torch.Tensor, partner: torch.Tensor) -> torch.Tensor:
    """`values` [B,...,H,W] with image i taking the `partner` batch's image i values inside
    its box (``boxes`` bool [B,H,W]); any dims between batch and the spatial ones are mixed
    alike."""
    if partner.shape != values.shape:
        raise ValueError(
            f"the CutMix partner batch {tuple(partner.shape)} differs from the unlabeled batch "
            f"{tuple(values.shape)}"
        )
    inside = boxes.view(boxes.shape[0], *([1] * (values.ndim - 3)), *boxes.shape[1:])
    return torch.where(inside, partner, values)


@contextlib.contextmanager
def dropout_off(net: nn.Module) -> Iterator[None]:
    """Within the block the dropout layers of `net` are in eval mode (pseudo-labels are made
    without dropout: smp's DeepLabV3/V3+ ASPP has one); other layers keep their mode."""
    layers = [m for m in net.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]
    saved = [m.training for m in layers]
    try:
        for layer in layers:
            layer.eval()
        yield
    finally:
        for layer, training in zip(layers, saved, strict=True):
            layer.train(training)


@contextlib.contextmanager
def evaluating(net: nn.Module) -> Iterator[None]:
    """Within the block `net` is in eval mode (batch-norm running statistics, no dropout)."""
    was_training = net.training
    net.eval()
    try:
        yield
    finally:
        net.train(was_training)


@contextlib.contextmanager
def feature_dropout(
    net: nn.Module, p: float, generator: torch.Generator | None = None
) -> Iterator[None]:
    """While active, channel dropout (as ``nn.Dropout2d``: whole channels zeroed with
    probability `p`, the rest scaled by 1/(1-p)) on every 4-D feature map ``net.encoder``
    outputs (a tensor, or a list/tuple/dict of them): smp models and
    `segkit.models.torchvision_segmenter.TorchvisionSegmenter` have one. The channel masks are
    drawn on the CPU from `generator` (default: torch's global RNG)."""
    encoder = getattr(net, "encoder", None)
    if not isinstance(encoder, nn.Module):
        raise TypeError(
            f"{type(net).__name__} has no `encoder` module: UniMatch's feature perturbation "
            "(model.consistency.fp_weight > 0) needs one (smp and torchvision segmenters have it)"
        )

    def channel_dropout(t: torch.Tensor) -> torch.Tensor:
        if t.ndim != 4 or p == 0.0:
            return t
        keep = torch.rand(t.shape[0], t.shape[1], 1, 1, generator=generator) >= p
        scale = keep.to(device=t.device, dtype=t.dtype) / (1.0 - p)
        return t * scale

    def drop(module: nn.Module, inputs: Any, output: Any) -> Any:
        return _map_tensors(output, channel_dropout)

    handle = encoder.register_forward_hook(drop)
    try:
        yield
    finally:
        handle.remove()


def _map_tensors(value: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, dict):
        return type(value)((k, _map_tensors(v, fn)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(_map_tensors(v, fn) for v in value)
    return value


@dataclass
class ConsistencyOutput:
    """What `WeakToStrong` returns: the weighted unsupervised loss (fp32 scalar), the first
    mixed strong view's images and logits (with gradient: the adversarial task judges them),
    and the logged terms."""

    loss: torch.Tensor
    strong_images: torch.Tensor
    strong_logits: torch.Tensor
    logged: dict[str, torch.Tensor] = field(default_factory=dict)


class WeakToStrong:
    """The unsupervised loss of FixMatch or UniMatch on one unlabeled batch (module docstring).

    Args:
        threshold: confidence above which a pseudo-labelled pixel counts (0.95 in both papers).
        unsup_weight: weight of the unsupervised loss next to the supervised one.
        cutmix_prob: probability that a strong view is mixed with a box of another image.
        fp_weight: UniMatch's weight of the feature-perturbed stream (0.5); 0 turns it off
            (FixMatch).
        feature_dropout: dropout rate on encoder features for that stream (0.5).
        ema_momentum: None, or the momentum of an EMA teacher giving the pseudo-labels
            (`EMATeacher`; the task owns it).
        start: iterations trained on labeled images only before the unsupervised loss starts
            (0 in the papers, which start from ImageNet weights; a network trained from
            scratch first needs pseudo-labels worth learning).
    """

    def __init__(
        self,
        threshold: float = 0.95,
        unsup_weight: float = 1.0,
        cutmix_prob: float = 0.5,
        fp_weight: float = 0.0,
        feature_dropout: float = 0.5,
        ema_momentum: float | None = None,
        start: int = 0,
    ) -> None:
        if start < 0:
            raise ValueError(f"consistency start={start} is invalid: expected >= 0")
        for name, value in (
            ("threshold", threshold),
            ("cutmix_prob", cutmix_prob),
            ("fp_weight", fp_weight),
            ("feature_dropout", feature_dropout),
        ):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"consistency {name}={value} is invalid: expected 0..1")
        if ema_momentum is not None and not 0.0 < ema_momentum < 1.0:
            raise ValueError(f"ema_momentum={ema_momentum} is invalid: expected 0 < m < 1")
        self.threshold, self.unsup_weight = threshold, unsup_weight
        self.cutmix_prob, self.fp_weight = cutmix_prob, fp_weight
        self.feature_dropout, self.ema_momentum = feature_dropout, ema_momentum
        self.start = start

    def active(self, iteration: int) -> bool:
        """Whether the unsupervised loss applies at `iteration` (segmenter steps so far)."""
        return iteration >= self.start

    def __call__(
        self,
        net: nn.Module,
        student: Forward,
        unlabeled: dict[str, Any],
        teacher: Forward | None = None,
        select: Selector | None = None,
        generator: torch.Generator | None = None,
        partner: dict[str, Any] | None = None,
    ) -> ConsistencyOutput:
        """The loss on `unlabeled`.

        Args:
            net: the segmenter (its encoder is perturbed for the fp stream).
            student: the segmenter's training forward, images -> logits [B,C,H,W].
            unlabeled: ``{"image": weak [B,C,H,W], "strong": [B,V,C,H,W]}`` (+ ``"padding"``
                bool [B,H,W], ``"true_mask"`` [B,H,W] for ``train/pseudo_acc``).
            teacher: forward giving the pseudo-labels (the EMA teacher); None: `student`.
            select: vetoes confident pixels (a discriminator's confidence): a pixel counts
                where it is confident and ``select`` is true.
            generator: the source of CutMix boxes and feature dropout (`step_generator`).
            partner: the CutMix partner, a second unlabeled batch of the same form (the
                datamodule's ``"unlabeled_mix"`` loader); required when ``cutmix_prob`` > 0.
        """
        strong = _strong_views(unlabeled)
        pseudo, selected, valid = self._pseudo_labels(
            lambda x: _with_dropout_off(net, teacher or student, x), unlabeled, select
        )
        logged = {"train/mask_ratio": (selected & valid).sum() / valid.sum().clamp(min=1)}
        true_mask = unlabeled.get("true_mask")
        if true_mask is not None:
            logged.update(pseudo_label_accuracy(pseudo, selected, true_mask))

        batch, views = strong.shape[:2]
        height, width = strong.shape[-2:]
        partner_views, partner_labels = strong, (pseudo, selected, valid)
        if self.cutmix_prob > 0:
            if partner is None:
                raise ValueError(
                    "CutMix (cutmix_prob > 0) mixes with a second unlabeled batch: the data "
                    "module gives it as 'unlabeled_mix' when data.strong_views > 0"
                )
            partner_views = _strong_views(partner)
            partner_labels = self._pseudo_labels(
                lambda x: _in_eval_mode(net, teacher or student, x), partner, select
            )
        mixed_images, mixed_labels = [], []
        for v in range(views):
            boxes = cutmix_boxes(
                batch, height, width, self.cutmix_prob, strong.device, generator=generator
            )
            mixed_images.append(mix(strong[:, v], boxes, partner_views[:, v]))
            mixed_labels.append(
                [
                    mix(own, boxes, other)
                    for own, other in zip((pseudo, selected, valid), partner_labels, strict=True)
                ]
            )
        logits = student(torch.cat(mixed_images)).float()
        strong_losses = [
            _masked_cross_entropy(view_logits, *labels)
            for view_logits, labels in zip(logits.chunk(views), mixed_labels, strict=True)
        ]
        unsup = torch.stack(strong_losses).mean()
        if self.fp_weight > 0:
            with feature_dropout(net, self.feature_dropout, generator):
                fp_logits = student(unlabeled["image"]).float()
            fp_loss = _masked_cross_entropy(fp_logits, pseudo, selected, valid)
            logged["train/fp_loss"] = fp_loss.detach()
            unsup = (1.0 - self.fp_weight) * unsup + self.fp_weight * fp_loss
        logged["train/unsup_loss"] = unsup.detach()
        return ConsistencyOutput(
            self.unsup_weight * unsup, mixed_images[0], logits.chunk(views)[0], logged
        )

    def _pseudo_labels(
        self,
        forward: Forward,
        unlabeled: dict[str, Any],
        select: Selector | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(pseudo-labels int64 [B,H,W], selected bool [B,H,W], not padding bool [B,H,W]) of
        an unlabeled batch's weak view, without gradient."""
        weak = unlabeled["image"]
        with torch.no_grad():
            probs = forward(weak).float().softmax(1)
            pseudo, _, selected = confident_pixels(probs, self.threshold)
            if select is not None:
                selected = selected & select(probs, weak)
        padding = unlabeled.get("padding")
        valid = ~padding.bool() if padding is not None else torch.ones_like(selected)
        return pseudo, selected, valid


def _strong_views(unlabeled: dict[str, Any]) -> torch.Tensor:
    strong = unlabeled.get("strong")
    if strong is None or strong.ndim != 5:
        raise ValueError(
            "weak-to-strong consistency needs strong views of the unlabeled images: set "
            "data.strong_views (the method presets do) and data.strong_transform"
        )
    return strong


def _with_dropout_off(net: nn.Module, forward: Forward, images: torch.Tensor) -> torch.Tensor:
    with dropout_off(net):
        return forward(images)


def _in_eval_mode(net: nn.Module, forward: Forward, images: torch.Tensor) -> torch.Tensor:
    with evaluating(net):
        return forward(images)


def _masked_cross_entropy(
    logits: torch.Tensor, pseudo: torch.Tensor, selected: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy summed over the selected pixels that are not padding, divided by all
    pixels that are not padding (UniMatch)."""
    per_pixel = F.cross_entropy(logits, pseudo, reduction="none")
    return (per_pixel * (selected & valid)).sum() / valid.sum().clamp(min=1)


def pseudo_label_accuracy(
    pseudo: torch.Tensor, selected: torch.Tensor, true_mask: torch.Tensor
) -> dict[str, torch.Tensor]:
    """``train/pseudo_acc``: the share of selected, labelled pixels whose pseudo-label is the
    hidden true class (absent when no such pixel); ``train/pseudo_acc_all``: over all labelled
    pixels (ignore index 255 and any label outside the classes excluded)."""
    known = (true_mask >= 0) & (true_mask < 255)
    correct = (pseudo == true_mask) & known
    logged = {"train/pseudo_acc_all": correct.sum() / known.sum().clamp(min=1)}
    chosen = known & selected
    if chosen.any():
        logged["train/pseudo_acc"] = (correct & selected).sum() / chosen.sum()
    return logged


class EMATeacher(nn.Module):
    """An exponential moving average of a segmenter (Tarvainen & Valpola 2017), used for
    pseudo-labels; its weights are in the task's checkpoint (``teacher.net.*``).

    The copy is taken from the student at the first `update` or forward (after pretrained
    weights are loaded into the student), then each `update` moves its parameters towards the
    student's by ``1 - min(momentum, 1 - 1/(t + 1))`` (the usual warm-up: an early teacher
    follows the student closely) and copies its buffers (batch-norm statistics).

    ``normalization`` is how the teacher's batch-norm layers normalise: ``"running"`` (eval
    mode: the student's running statistics) or ``"batch"`` (the statistics of the batch it
    labels, as DACS's teacher, which stays in training mode; under a domain shift the running
    statistics are the source's). Either way its buffers are left untouched and its other
    layers (dropout) are in eval mode.
    """

    def __init__(self, student: nn.Module, momentum: float, normalization: str = "running") -> None:
        super().__init__()
        if normalization not in TEACHER_NORMALIZATIONS:
            raise ValueError(
                f"teacher normalization={normalization!r} is invalid: expected one of "
                f"{', '.join(TEACHER_NORMALIZATIONS)}"
            )
        self.net = copy.deepcopy(student)
        self.net.requires_grad_(False)
        self.momentum = momentum
        self.normalization = normalization
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def sync(self, student: nn.Module) -> None:
        """Become a copy of `student` (once: before the first update)."""
        mine, theirs = self.net.state_dict(), student.state_dict()
        for key, value in mine.items():
            value.copy_(theirs[key])
        self.initialised.fill_(True)

    @torch.no_grad()
    def update(self, student: nn.Module) -> None:
        if not bool(self.initialised):
            self.sync(student)
        momentum = min(self.momentum, 1.0 - 1.0 / (int(self.updates) + 1.0))
        for mine, theirs in zip(self.net.parameters(), student.parameters(), strict=True):
            mine.lerp_(theirs.detach(), 1.0 - momentum)
        for mine, theirs in zip(self.net.buffers(), student.buffers(), strict=True):
            mine.copy_(theirs)
        self.updates += 1

    def as_forward(
        self, student: nn.Module, memory_format: torch.memory_format = torch.contiguous_format
    ) -> Forward:
        """images -> teacher logits, in the task's memory format: `WeakToStrong`'s ``teacher``."""
        return lambda images: self(images.contiguous(memory_format=memory_format), student)

    @torch.no_grad()
    def forward(self, images: torch.Tensor, student: nn.Module) -> torch.Tensor:
        """Logits [B,C,H,W] of the teacher in eval mode, its batch-norm layers normalising as
        ``normalization`` says."""
        if not bool(self.initialised):
            self.sync(student)
        was_training = self.net.training
        self.net.eval()
        with batch_statistics(self.net, self.normalization == "batch"):
            out = self.net(images)
        self.net.train(was_training)
        return out["out"] if isinstance(out, dict) else out


@contextlib.contextmanager
def batch_statistics(net: nn.Module, enabled: bool = True) -> Iterator[None]:
    """Within the block the batch-norm layers of `net` normalise with the statistics of the
    batch they see and leave their running statistics as they are."""
    layers = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not enabled:
        layers = []
    saved = [(m.training, m.track_running_stats) for m in layers]
    try:
        for layer in layers:
            # Training mode without tracking: batch statistics, running buffers not updated.
            layer.train()
            layer.track_running_stats = False
        yield
    finally:
        for layer, (training, tracking) in zip(layers, saved, strict=True):
            layer.train(training)
            layer.track_running_stats = tracking
