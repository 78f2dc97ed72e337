"""The networks that label unlabeled images: an EMA teacher (`EMATeacher`, Tarvainen & Valpola
2017) and the modes a segmenter labels in (its dropout off, eval mode, or its batch-norm layers
on the labelled batch's own statistics)."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator

import torch
from torch import nn

#: images [B,C,H,W] -> logits [B,K,H,W]
Forward = Callable[[torch.Tensor], torch.Tensor]
#: How an `EMATeacher`'s batch-norm layers normalise the images it labels.
TEACHER_NORMALIZATIONS = ("running", "batch")


def check_teacher_normalization(name: str, value: str) -> str:
    """`value` if it is one of `TEACHER_NORMALIZATIONS`, else a ValueError naming `name`."""
    if value not in TEACHER_NORMALIZATIONS:
        raise ValueError(
            f"{name}={value!r} is invalid: expected one of {', '.join(TEACHER_NORMALIZATIONS)}"
        )
    return value


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
        check_teacher_normalization("normalization", normalization)
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
