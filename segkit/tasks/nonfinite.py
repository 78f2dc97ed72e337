"""What a task does with a NaN or infinite training loss: stop at once with a message that
names the step and the loss parts (``on_nonfinite="error"``, the default), or skip the batch
and count it (``"skip"``). Given to each task's constructor from ``trainer.on_nonfinite``
(`segkit.run.build`).

Under DDP the ranks agree first (one all-reduce of a flag), so they skip or stop together and
no rank waits for a gradient the others never send. The check costs one host sync per step.
A skipped batch leaves no trace: its forward pass's updates of normalisation statistics are
undone (with ``skip``, buffers are copied before each batch; they are a small fraction of a
model's memory).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

ON_NONFINITE = ("error", "skip")


class NonFiniteLossError(RuntimeError):
    """A training loss was NaN or infinite (``trainer.on_nonfinite=error``)."""


class NonFiniteGuard:
    """Mixin for LightningModules: call `usable_loss` before each backward pass."""

    #: "error" or "skip" (a constructor argument of each task: `_init_nonfinite`).
    on_nonfinite: str = "error"
    #: Batches skipped so far in this process.
    nonfinite_skips: int = 0
    #: Buffers before the current batch (``skip`` only), put back when it is skipped.
    _buffers_before: list[torch.Tensor]

    def _init_nonfinite(self, on_nonfinite: str) -> None:
        if on_nonfinite not in ("error", "skip"):
            raise ValueError(f"on_nonfinite={on_nonfinite!r} is invalid: expected error or skip")
        self.on_nonfinite = on_nonfinite

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        # The forward pass of a batch that turns out non-finite has already updated the
        # normalisation statistics (NaN inputs make them NaN): keep a copy to put back.
        if self.on_nonfinite == "skip":
            self._buffers_before = [b.detach().clone() for b in self.buffers()]

    def usable_loss(self, loss: torch.Tensor, parts: Mapping[str, torch.Tensor]) -> bool:
        """True when `loss` is finite on every rank. Otherwise False to skip the batch
        (``on_nonfinite="skip"``), or NonFiniteLossError naming the step and `parts`."""
        finite = torch.isfinite(loss.detach()).all()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            flag = finite.float()
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MIN)
            finite = flag > 0
        if bool(finite):
            return True
        if self.on_nonfinite == "skip":
            with torch.no_grad():
                for buffer, saved in zip(self.buffers(), self._buffers_before, strict=True):
                    buffer.copy_(saved)
            self.nonfinite_skips += 1
            self.log("train/nonfinite_skips", 1.0, reduce_fx="sum", on_step=False, on_epoch=True)
            return False
        described = ", ".join(f"{k}={_value(v)}" for k, v in parts.items()) or "none logged"
        raise NonFiniteLossError(
            f"non-finite loss at step {self.trainer.global_step} (epoch "
            f"{self.trainer.current_epoch}, batch {self.trainer.fit_loop.epoch_loop.batch_idx}): "
            f"loss={_value(loss)}; parts: {described}"
        )


def _value(tensor: torch.Tensor) -> str:
    value = tensor.detach().float()
    return f"{value.item():.4g}" if value.numel() == 1 else f"{value.tolist()}"
