"""Unsupervised domain adaptation for semantic segmentation as a LightningModule: a segmenter
learns from a labeled source domain and an unlabeled target domain (AdaptSegNet, ADVENT,
MinEnt, DACS), with manual optimization of the segmenter and, for the adversarial methods, a
discriminator."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch
from torch import nn
from torchmetrics import MeanMetric

from segkit.metrics import SegmentationScores
from segkit.tasks.adaptation_losses import (
    classmix_masks,
    dacs_pixel_weights,
    mean_entropy,
    mix_source_into_target,
    self_information,
    weighted_cross_entropy,
)
from segkit.tasks.consistency import (
    TEACHER_NORMALIZATIONS,
    EMATeacher,
    confident_pixels,
    pseudo_label_accuracy,
    step_generator,
)
from segkit.tasks.gan_losses import check_kind, confidence, discriminator_loss, generator_loss
from segkit.tasks.nonfinite import NonFiniteGuard
from segkit.tasks.optimization import OptimizerFactory, SchedulerFactory, check_scheduler_interval
from segkit.tasks.semantic_evaluation import SemanticEvaluation
from segkit.tasks.two_networks import TwoNetworkOptimization

METHODS = ("source_only", "adaptsegnet", "advent", "minent", "dacs")
#: Methods trained against a discriminator, and what it judges.
ADVERSARIAL = {"adaptsegnet": "softmax", "advent": "self-information"}


class DomainAdaptation(
    SemanticEvaluation, NonFiniteGuard, TwoNetworkOptimization, L.LightningModule
):
    """Trains a segmenter on labeled source images and adapts it to unlabeled target images.

    Training batches are ``{"source": semantic batch, "target": {"image": [B,C,H,W],
    ("strong": [B,V,C,H,W]), ("true_mask"), "name"}}`` (`segkit.data.domain_pair`). Every
    method has the supervised loss on source images; target images never reach it. From
    iteration ``adapt_start``:

    - ``source_only``: nothing more (the baseline; target images are not read).
    - ``adaptsegnet`` (Tsai et al. 2018): ``adv_weight`` x the adversarial loss of the
      discriminator's logits on the target softmax, labelled as source; the discriminator
      learns source softmax = real, target softmax = fake.
    - ``advent`` (Vu et al. 2019): the same on self-information maps ``-p log p / log C``.
    - ``minent`` (Vu et al. 2019): ``entropy_weight`` x the target's mean normalised entropy.
    - ``dacs`` (Tranheden et al. 2021): pseudo-labels from the target's weak view (the EMA
      teacher's with ``ema_momentum``, its batch-norm as ``teacher_normalization`` says, else
      the segmenter's in training mode, without gradient); ClassMix pastes
      half the classes of each source image onto the target image (its first strong view when
      the target has strong views); ``mix_weight`` x the cross-entropy of the mixed image
      against the mixed labels, source pixels weighted 1 and target pixels by the share of
      target pixels whose confidence exceeds ``threshold``.

    Validation: the target's val split logs ``val/...`` (what ``monitor`` reads), the source's
    (the datamodule's second loader) ``val_source/...``; test is the target's.

    Logs ``train/loss``, ``train/sup_loss``, ``train/target_entropy`` (mean normalised entropy
    of target predictions; all but source_only), ``train/adv_loss``, ``train/d_loss``,
    ``train/d_source_acc``, ``train/d_target_acc`` (adversarial methods), ``train/entropy_loss``
    (minent), ``train/mix_loss``, ``train/mix_source_ratio`` (share of mixed pixels from the
    source), ``train/pseudo_weight`` (share of confident target pixels) and, when the target
    samples carry their hidden masks (synthetic data), ``train/pseudo_acc`` and
    ``train/pseudo_acc_all`` (dacs).

    Steps: as in `segkit.tasks.two_networks` (``trainer.max_steps`` counts the
    discriminator's steps too; ``iteration`` counts batches).

    Args:
        segmenter: semantic network, images [B,C_in,H,W] -> logits [B,C,H,W] (``{"out",
            "aux"}`` in training mode with an auxiliary head, used on source images only).
        loss: the supervised loss ``loss(logits, mask)`` on source images.
        optimizer, scheduler: the segmenter's optimizer and scheduler factories.
        method: one of `METHODS`.
        discriminator, d_optimizer, d_scheduler: the discriminator (a
            `segkit.models.discriminators` module on C-channel maps, e.g.
            `ConfidenceDiscriminator`) and its factories: required by adaptsegnet and advent,
            refused by the others.
        gan_loss: "bce", "lsgan" or "hinge" (`segkit.tasks.gan_losses`).
        adv_weight: weight of the adversarial term (0.001 in both papers).
        entropy_weight: weight of MinEnt's term (0.001).
        mix_weight: weight of DACS's mixed loss (1).
        threshold: DACS's pseudo-label confidence threshold (0.968).
        ema_momentum: None, or the momentum of DACS's EMA teacher (0.99 in the paper).
        teacher_normalization: how the teacher's batch-norm layers normalise target images:
            "batch" (each target batch's own statistics, as DACS's teacher, which stays in
            training mode) or "running" (eval mode: the student's running statistics, mostly
            the source's).
        adapt_start: iterations on source images only before the adaptation terms start.
        d_steps: discriminator steps per segmenter step.
        gradient_clip_val: clip each network's gradient norm to this.
        num_classes, ignore_index, class_names, scheduler_interval, channels_last,
            aux_loss_weight, on_nonfinite, inference: as for `SemanticSegmentation`.
    """

    def __init__(
        self,
        segmenter: nn.Module,
        loss: nn.Module,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        method: str = "advent",
        discriminator: nn.Module | None = None,
        d_optimizer: OptimizerFactory | None = None,
        d_scheduler: SchedulerFactory | None = None,
        gan_loss: str = "bce",
        adv_weight: float = 0.001,
        entropy_weight: float = 0.001,
        mix_weight: float = 1.0,
        threshold: float = 0.968,
        ema_momentum: float | None = None,
        teacher_normalization: str = "batch",
        adapt_start: int = 0,
        d_steps: int = 1,
        gradient_clip_val: float | None = None,
        num_classes: int = 2,
        ignore_index: int = 255,
        class_names: Sequence[str] | None = None,
        scheduler_interval: str = "step",
        channels_last: bool | str = False,
        aux_loss_weight: float = 0.5,
        on_nonfinite: str = "error",
        inference: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"method={method!r} is invalid: expected one of {', '.join(METHODS)}")
        adversarial = method in ADVERSARIAL
        if adversarial != (discriminator is not None) or (adversarial and d_optimizer is None):
            raise ValueError(
                f"method={method}: "
                + (
                    "needs a discriminator and its d_optimizer (model/method presets set them)"
                    if adversarial
                    else "trains no discriminator: set model.discriminator=null"
                )
            )
        check_scheduler_interval(scheduler_interval)
        check_kind(gan_loss)
        if d_steps < 1:
            raise ValueError(f"d_steps={d_steps} is invalid: expected at least 1")
        if adapt_start < 0:
            raise ValueError(f"adapt_start={adapt_start} is invalid: expected >= 0")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold={threshold} is invalid: expected 0..1")
        if ema_momentum is not None and not 0.0 < ema_momentum < 1.0:
            raise ValueError(f"ema_momentum={ema_momentum} is invalid: expected 0 < m < 1")
        if teacher_normalization not in TEACHER_NORMALIZATIONS:
            raise ValueError(
                f"teacher_normalization={teacher_normalization!r} is invalid: expected one of "
                f"{', '.join(TEACHER_NORMALIZATIONS)}"
            )
        self.automatic_optimization = False
        # Modules and factories stay out of hparams: checkpoints load with weights_only=True.
        self.save_hyperparameters(
            ignore=[
                "segmenter",
                "discriminator",
                "loss",
                "optimizer",
                "d_optimizer",
                "scheduler",
                "d_scheduler",
            ],
            logger=False,
        )
        self.net, self.discriminator, self.loss = segmenter, discriminator, loss
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.d_optimizer_factory, self.d_scheduler_factory = d_optimizer, d_scheduler
        self._init_evaluation(num_classes, ignore_index, class_names, inference)
        self._init_nonfinite(on_nonfinite)
        names = list(class_names) if class_names else [str(i) for i in range(num_classes)]
        self.source_val_scores = SegmentationScores(num_classes, ignore_index, names)
        self.source_val_loss = MeanMetric()
        self._source_validated = False
        use_teacher = method == "dacs" and ema_momentum is not None
        self.teacher = (
            EMATeacher(segmenter, ema_momentum, teacher_normalization) if use_teacher else None
        )

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        if not isinstance(batch, dict) or "source" not in batch or "target" not in batch:
            raise ValueError(
                "domain adaptation trains on {'source', 'target'} batches: use a domain pair "
                "data config (data=synthetic_shift, data=gta5_cityscapes; "
                "docs/domain_adaptation.md)"
            )
        source, target = batch["source"], batch["target"]
        optimizers = self.optimizers()
        g_opt = optimizers[0] if isinstance(optimizers, list) else optimizers

        self.toggle_optimizer(g_opt)
        loss, logged, maps = self._segmenter_loss(source, target)
        if not self.usable_loss(loss, logged):  # on_nonfinite=skip: the whole batch
            self.untoggle_optimizer(g_opt)
            return
        self.manual_backward(loss)
        self._clip(g_opt)
        g_opt.step()
        g_opt.zero_grad(set_to_none=True)
        self.untoggle_optimizer(g_opt)
        if self.teacher is not None:
            self.teacher.update(self.net)
        if maps is not None:
            logged.update(self._discriminator_step(optimizers[1], *maps))

        size = source["image"].shape[0]
        self.log("train/loss", loss.detach(), prog_bar=True, batch_size=size)
        self.log_dict(logged, batch_size=size)
        if self.hparams.scheduler_interval == "step":
            self._step_schedulers()

    def _segmenter_loss(
        self, source: dict[str, Any], target: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], tuple[torch.Tensor, torch.Tensor] | None]:
        """(loss, logged terms, detached (source, target) maps for the discriminator or
        None)."""
        hp = self.hparams
        sup, source_logits, logged = self._supervised(source["image"], source["mask"])
        logged["train/sup_loss"] = sup.detach()
        loss, maps = sup, None
        active = self.iteration >= hp.adapt_start
        if hp.method == "dacs":
            if active:
                mix_loss, mix_logged = self._dacs_loss(source, target)
                loss = loss + hp.mix_weight * mix_loss
                logged.update(mix_logged)
        elif hp.method != "source_only":
            target_probs = self._train_forward(target["image"])[0].float().softmax(1)
            logged["train/target_entropy"] = mean_entropy(target_probs.detach())
            if hp.method == "minent" and active:
                entropy = mean_entropy(target_probs)
                loss = loss + hp.entropy_weight * entropy
                logged["train/entropy_loss"] = entropy.detach()
            if hp.method in ADVERSARIAL:
                source_map = self._judged_map(source_logits.float().softmax(1))
                target_map = self._judged_map(target_probs)
                adv = torch.zeros((), device=loss.device)
                if active:
                    adv = generator_loss(self.discriminator(target_map), hp.gan_loss)
                    loss = loss + hp.adv_weight * adv
                logged["train/adv_loss"] = adv.detach()
                maps = (source_map.detach(), target_map.detach())
        return loss, logged, maps

    def _judged_map(self, probs: torch.Tensor) -> torch.Tensor:
        """What the discriminator sees: the softmax (AdaptSegNet) or ADVENT's self-information."""
        return self_information(probs) if self.hparams.method == "advent" else probs

    def _discriminator_step(
        self, d_opt: Any, source_map: torch.Tensor, target_map: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """``d_steps`` discriminator updates: source maps are real, target maps fake."""
        kind = self.hparams.gan_loss
        self.toggle_optimizer(d_opt)
        for _ in range(self.hparams.d_steps):
            d_source = self.discriminator(source_map)
            d_target = self.discriminator(target_map)
            d_loss = discriminator_loss(d_source, d_target, kind)
            if not self.usable_loss(d_loss, {"train/d_loss": d_loss}):
                continue  # on_nonfinite=skip: this discriminator step
            self.manual_backward(d_loss)
            self._clip(d_opt)
            d_opt.step()
            d_opt.zero_grad(set_to_none=True)
        self.untoggle_optimizer(d_opt)
        return {
            "train/d_loss": d_loss.detach(),
            "train/d_source_acc": (confidence(d_source.detach(), kind) > 0.5).float().mean(),
            "train/d_target_acc": (confidence(d_target.detach(), kind) <= 0.5).float().mean(),
        }

    def _dacs_loss(
        self, source: dict[str, Any], target: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """DACS's loss on ClassMix images of the batch, and its logged terms."""
        hp = self.hparams
        weak, images, labels = target["image"], source["image"], source["mask"]
        if weak.shape[-2:] != images.shape[-2:]:
            raise ValueError(
                f"dacs mixes source and target images of one size: got source "
                f"{tuple(images.shape[-2:])} and target {tuple(weak.shape[-2:])}; crop both "
                "domains to the same size (data.source/target crop_size)"
            )
        with torch.no_grad():
            if self.teacher is not None:
                logits = self.teacher.as_forward(self.net, self.memory_format)(weak)
            else:
                logits = self._train_forward(weak)[0]
            probs = logits.float().softmax(1)
            pseudo, confidence_map, confident = confident_pixels(probs, hp.threshold)
        generator = step_generator(self.trainer.global_step, self.global_rank)
        masks = classmix_masks(labels, hp.ignore_index, generator)
        strong = target.get("strong")
        target_images = strong[:, 0] if strong is not None else weak
        mixed_images = mix_source_into_target(masks, images, target_images)
        mixed_labels = mix_source_into_target(masks, labels, pseudo)
        weights = mix_source_into_target(
            masks, torch.ones_like(confidence_map), dacs_pixel_weights(confidence_map, hp.threshold)
        )
        mixed_logits = self._train_forward(mixed_images)[0]
        loss = weighted_cross_entropy(mixed_logits, mixed_labels, weights, hp.ignore_index)
        logged = {
            "train/mix_loss": loss.detach(),
            "train/mix_source_ratio": masks.float().mean(),
            "train/pseudo_weight": confident.float().mean(),
            "train/target_entropy": mean_entropy(probs),
        }
        if target.get("true_mask") is not None:
            logged.update(pseudo_label_accuracy(pseudo, confident, target["true_mask"]))
        return loss, logged

    def validation_step(
        self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0
    ) -> torch.Tensor:
        if dataloader_idx == 1:  # the source domain's val split (segkit.data.domain_pair)
            self._source_validated = True
            return self._evaluate(batch, "val_source", self.source_val_scores, self.source_val_loss)
        return super().validation_step(batch, batch_idx)

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        if self._source_validated:
            self._log_scores("val_source", self.source_val_scores)
            self._source_validated = False
