"""Mixed precision (``bf16-mixed``, ``16-mixed``) whose gradient clipping is right with every
optimizer, fused ones included, in automatic and in manual optimization.

Lightning's ``MixedPrecision`` refuses to clip the gradients of a fused optimizer (fused
AdamW unscales inside its kernel, so the gradients Lightning would clip are still multiplied
by the GradScaler's scale), even under bf16, which has no scaler at all. And in manual
optimization (the adversarial task) it clips before ``optimizer.step()`` unscales, i.e. the
scaled gradients. `ClippableMixedPrecision` unscales where clipping needs true gradients:

- bf16: no scaler; gradients are true ones, so clipping just runs (fused kernels are kept).
- fp16: clipping first calls ``GradScaler.unscale_`` (once per step). PyTorch's
  ``GradScaler.step`` knows an optimizer that was unscaled already: a fused optimizer is then
  given no scale and only the inf/NaN flag, so it skips overflowing steps as usual. Without
  clipping, a fused optimizer keeps unscaling inside its kernel (no extra pass).

It also runs ``16-mixed`` as real fp16 autocast with a GradScaler on CPU, where Lightning
would silently switch to bf16: CPU runs then test the path pre-Ampere GPUs take.
"""

from __future__ import annotations

from typing import Any

from lightning.fabric.plugins.precision.amp import _optimizer_handles_unscaling
from lightning.pytorch.plugins.precision import MixedPrecision, Precision
from lightning.pytorch.utilities import GradClipAlgorithmType
from torch.optim import LBFGS, Optimizer


def _raw(optimizer: Any) -> Optimizer:
    """The torch optimizer behind a LightningOptimizer (GradScaler keys its state by id)."""
    return getattr(optimizer, "_optimizer", optimizer)


class ClippableMixedPrecision(MixedPrecision):
    """`MixedPrecision` with clipping that unscales first (fused optimizers, manual steps).

    Args:
        precision: "16-mixed" (fp16 autocast and a GradScaler) or "bf16-mixed".
        device: autocast device type, "cuda" or "cpu".
    """

    def __init__(self, precision: str, device: str) -> None:
        super().__init__(precision, device)  # type: ignore[arg-type]
        self._unscaled: set[int] = set()  # optimizers unscaled since the scaler's last update

    def _unscale_once(self, optimizer: Any) -> None:
        optimizer = _raw(optimizer)
        if self.scaler is None or id(optimizer) in self._unscaled:
            return
        self.scaler.unscale_(optimizer)
        self._unscaled.add(id(optimizer))

    def clip_gradients(
        self,
        optimizer: Optimizer,
        clip_val: int | float = 0.0,
        gradient_clip_algorithm: GradClipAlgorithmType = GradClipAlgorithmType.NORM,
    ) -> None:
        if clip_val <= 0:
            return
        self._unscale_once(optimizer)  # clip true gradients, whatever the optimizer
        # Precision's clipping, without MixedPrecision's refusal of fused optimizers.
        Precision.clip_gradients(self, optimizer, clip_val, gradient_clip_algorithm)

    def optimizer_step(self, optimizer: Any, model: Any, closure: Any, **kwargs: Any) -> Any:
        if self.scaler is None:  # bf16: no scaling to undo
            return super().optimizer_step(optimizer, model=model, closure=closure, **kwargs)
        if isinstance(optimizer, LBFGS):
            raise ValueError("16-mixed (GradScaler) cannot step LBFGS; use bf16-mixed or 32-true")
        closure_result = closure()
        # Automatic optimization whose closure skipped backward: nothing to unscale or step.
        skipped = closure_result is None and model.automatic_optimization
        if not skipped and not _optimizer_handles_unscaling(optimizer):
            # As Lightning: hooks after the closure (grad-norm logging, clipping) see true
            # gradients. A fused optimizer is unscaled only if clipping asks for it.
            self._unscale_once(optimizer)
        self._after_closure(model, optimizer)
        if skipped:
            return closure_result
        output = self.scaler.step(_raw(optimizer), **kwargs)  # skips the step on inf/NaN
        self.scaler.update()
        self._unscaled.clear()
        return output
