"""Manual optimization of a segmenter and an optional discriminator, one segmenter step then
``d_steps`` discriminator steps per batch (Lightning's GAN pattern), shared by the adversarial
(`segkit.tasks.adversarial`) and domain-adaptation (`segkit.tasks.adapt`) tasks."""

from __future__ import annotations

from typing import Any

from torch import nn

from segkit.tasks.optimization import FactoryOptimizers, OptimizerFactory, SchedulerFactory


class TwoNetworkOptimization(FactoryOptimizers):
    """Mixin for manually optimized LightningModules with ``self.net``, ``self.discriminator``
    (None: the segmenter alone), the factories ``optimizer_factory``, ``scheduler_factory``,
    ``d_optimizer_factory``, ``d_scheduler_factory``, and ``hparams.scheduler_interval`` and
    ``hparams.gradient_clip_val``; `discriminator_steps` says how many discriminator steps
    follow each segmenter step.

    Lightning's ``trainer.global_step`` counts both networks' optimizer steps, so it grows by
    ``1 + discriminator_steps`` per batch, and ``trainer.max_steps`` counts them too;
    `iteration` (segmenter steps = batches) is what warm-ups and per-step schedulers count.
    """

    # Set by the task's __init__, beside `FactoryOptimizers`' (annotations only).
    discriminator: nn.Module | None
    d_optimizer_factory: OptimizerFactory | None
    d_scheduler_factory: SchedulerFactory | None

    @property
    def discriminator_steps(self) -> int:
        return self.hparams.d_steps if self.discriminator is not None else 0

    @property
    def iteration(self) -> int:
        """Segmenter steps taken so far (``global_step`` counts both networks' steps)."""
        return self.trainer.global_step // (1 + self.discriminator_steps)

    def configure_optimizers(self) -> Any:
        pairs = [(self.optimizer_factory(model=self.net), self.scheduler_factory)]
        if self.discriminator is not None:
            pairs.append(
                (self.d_optimizer_factory(model=self.discriminator), self.d_scheduler_factory)
            )
        schedulers = [
            {
                "scheduler": factory(optimizer=opt, **self._filled_kwargs(opt, factory)),
                "interval": self.hparams.scheduler_interval,
            }
            for opt, factory in pairs
            if factory is not None
        ]
        return [opt for opt, _ in pairs], schedulers

    def _scheduler_steps(self) -> int:
        # One scheduler step per batch; max_steps counts the 1 + d_steps optimizer steps of a
        # batch (and training stops at the first batch reaching it).
        batches = int(self.trainer.estimated_stepping_batches)
        if self.trainer.max_steps > 0:
            per_batch = 1 + self.discriminator_steps
            batches = min(batches, -(-self.trainer.max_steps // per_batch))
        return batches

    def on_train_epoch_end(self) -> None:
        if self.hparams.scheduler_interval == "epoch":
            self._step_schedulers()

    def _clip(self, optimizer: Any) -> None:
        if self.hparams.gradient_clip_val:
            self.clip_gradients(
                optimizer,
                gradient_clip_val=self.hparams.gradient_clip_val,
                gradient_clip_algorithm="norm",
            )

    def _step_schedulers(self) -> None:
        schedulers = self.lr_schedulers()
        if schedulers is None:
            return
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
            scheduler.step()
