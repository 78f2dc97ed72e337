"""How a task turns the optimizer and scheduler factories of its config into Lightning's
``configure_optimizers`` (shared by every task)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]

# Argument names under which torch schedulers take the run length, filled in when the
# scheduler config leaves them out (the length is only known once the trainer has the data).
_RUN_LENGTH_ARGS = ("total_iters", "total_steps", "T_max")


def check_scheduler_interval(interval: str) -> None:
    """Refuse a ``scheduler_interval`` other than "step" or "epoch"."""
    if interval not in ("step", "epoch"):
        raise ValueError(f"scheduler_interval={interval!r} is invalid: expected 'step' or 'epoch'")


class FactoryOptimizers:
    """Mixin for LightningModules with ``self.net``, ``self.optimizer_factory``,
    ``self.scheduler_factory`` and ``hparams.scheduler_interval`` ("step" or "epoch")."""

    # Set by the task's __init__ (annotations only: nn.Module registers the network itself).
    net: torch.nn.Module
    optimizer_factory: OptimizerFactory
    scheduler_factory: SchedulerFactory | None

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(model=self.net)
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer, **self._filled_kwargs(optimizer))
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": self.hparams.scheduler_interval},
        }

    def _filled_kwargs(
        self, optimizer: torch.optim.Optimizer, factory: SchedulerFactory | None = None
    ) -> dict[str, Any]:
        """Arguments the config leaves to the run for a scheduler factory (default: the task's
        ``scheduler_factory``): its length, and OneCycle's peak learning rate per parameter
        group (so encoder_lr_mult carries over)."""
        factory = factory or self.scheduler_factory
        given = getattr(factory, "keywords", {}) or {}
        target = getattr(factory, "func", factory)
        params = inspect.signature(target).parameters
        if self.hparams.scheduler_interval == "step":
            length = self._scheduler_steps()
        else:
            length = int(self.trainer.max_epochs)
        filled: dict[str, Any] = {
            a: length for a in _RUN_LENGTH_ARGS if a in params and given.get(a) is None
        }
        if "max_lr" in params and given.get("max_lr") is None:
            filled["max_lr"] = [group["lr"] for group in optimizer.param_groups]
        if "pct_start" in params and "total_steps" in filled:
            pct = given.get("pct_start", params["pct_start"].default)
            if pct * length == 1.0:
                # OneCycleLR divides by pct_start * total_steps - 1 (e.g. 10 steps at 0.1): a
                # hair more warm-up gives the same schedule (one warm-up step) without the
                # ZeroDivisionError.
                filled["pct_start"] = pct * (1 + 1e-6)
        return filled

    def _scheduler_steps(self) -> int:
        """How many times a per-step scheduler steps in the run: once per optimizer step."""
        return int(self.trainer.estimated_stepping_batches)
