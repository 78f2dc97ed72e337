"""Gradient clipping under every precision, with fused and unfused optimizers, in automatic
and manual optimization (segkit.run.mixed_precision): the step taken is the clipped true
gradient, never the scaled one, and never refused."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch import nn

from segkit.run.mixed_precision import ClippableMixedPrecision
from segkit.run.precision import autocast_dtype, trainer_precision

W0, X, LR = 0.1, 0.1, 1.0  # loss (w.x)^2 on 4 weights: gradient 2 (w.x) x, norm 0.016


def true_gradient() -> torch.Tensor:
    w, x = torch.full((4,), W0), torch.full((4,), X)
    return 2 * (w @ x) * x


class Quadratic(L.LightningModule):
    """One linear weight; SGD without momentum, so a step is exactly -lr * gradient."""

    def __init__(self, fused: bool, manual: bool, clip: float | None) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 1, bias=False)
        nn.init.constant_(self.layer.weight, W0)
        self.fused, self.clip = fused, clip
        self.automatic_optimization = not manual

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch[0]).float().pow(2).sum()
        if self.automatic_optimization:
            return loss
        opt = self.optimizers()
        self.manual_backward(loss)
        if self.clip:
            self.clip_gradients(opt, gradient_clip_val=self.clip, gradient_clip_algorithm="norm")
        opt.step()
        opt.zero_grad()
        return None

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=LR, fused=self.fused)

    def train_dataloader(self):
        dataset = torch.utils.data.TensorDataset(torch.full((1, 4), X))
        return torch.utils.data.DataLoader(dataset, batch_size=1)


def one_step(precision: str, fused: bool, manual: bool, clip: float | None) -> torch.Tensor:
    model = Quadratic(fused, manual, clip)
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        gradient_clip_val=None if manual else clip,
        **trainer_precision(precision, "cpu"),
    )
    trainer.fit(model)
    return (model.layer.weight.detach()[0] - W0) / -LR  # the gradient the step applied


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed", "16-mixed"])
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "foreach"])
@pytest.mark.parametrize("manual", [False, True], ids=["automatic", "manual"])
def test_a_step_applies_the_clipped_true_gradient(precision, fused, manual):
    reference = true_gradient()
    clip = 0.25 * float(reference.norm())
    clipped = one_step(precision, fused, manual, clip)
    assert float(clipped.norm()) == pytest.approx(clip, rel=0.02)
    assert torch.allclose(clipped / clipped.norm(), reference / reference.norm(), atol=0.02)

    unclipped = one_step(precision, fused, manual, None)
    assert torch.allclose(unclipped, reference, rtol=0.02)


def test_mixed_precision_gets_the_clippable_plugin_and_fp32_the_plain_flag():
    bf16 = trainer_precision("bf16-mixed", "cpu")["plugins"][0]
    fp16 = trainer_precision("16-mixed", "cpu")["plugins"][0]
    assert isinstance(bf16, ClippableMixedPrecision) and bf16.scaler is None
    # fp16 on CPU stays fp16 with a GradScaler (Lightning alone would switch to bf16).
    assert fp16.precision == "16-mixed" and fp16.scaler is not None
    assert trainer_precision("32-true", "cpu") == {"precision": "32-true"}
    assert trainer_precision("auto", "cpu").get("precision") in (None, "32-true")
    assert autocast_dtype("16-mixed") is torch.float16
    assert autocast_dtype("bf16-mixed") is torch.bfloat16
    assert autocast_dtype("32-true") is None


def test_fp16_overflow_skips_the_step_of_a_clipped_fused_optimizer():
    """An inf gradient under 16-mixed: the GradScaler skips the step and lowers its scale,
    also when clipping unscaled the fused optimizer first."""
    plugin = ClippableMixedPrecision("16-mixed", "cpu")
    param = nn.Parameter(torch.ones(3))
    opt = torch.optim.AdamW([param], lr=0.1, fused=True)
    plugin.scaler.scale(torch.ones(()))  # the scaler's first use creates its scale
    param.grad = torch.tensor([1.0, float("inf"), 1.0]) * plugin.scaler.get_scale()
    plugin.clip_gradients(opt, 1.0)
    scale = plugin.scaler.get_scale()
    plugin.scaler.step(opt)
    plugin.scaler.update()
    assert torch.equal(param.detach(), torch.ones(3))
    assert plugin.scaler.get_scale() < scale
