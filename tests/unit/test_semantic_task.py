"""SemanticSegmentation: shapes, learning, scheduler run length, logged keys."""

from __future__ import annotations

import functools

import lightning as L
import pytest
import segmentation_models_pytorch as smp
import torch

from segkit.data.synthetic import SyntheticDataModule
from segkit.optim import build_optimizer
from segkit.tasks.semantic import SemanticSegmentation


def make_task(scheduler=None, interval="step", channels_last=True, encoder_lr_mult=1.0):
    torch.manual_seed(0)
    net = smp.Unet("resnet18", encoder_weights=None, classes=3, decoder_channels=(32, 16, 8, 8, 8))
    return SemanticSegmentation(
        net,
        torch.nn.CrossEntropyLoss(ignore_index=255),
        functools.partial(
            build_optimizer, optimizer="torch.optim.AdamW", lr=3e-3, encoder_lr_mult=encoder_lr_mult
        ),
        scheduler,
        num_classes=3,
        class_names=["bg", "a", "b"],
        scheduler_interval=interval,
        channels_last=channels_last,
    )


def test_forward_returns_logits_at_input_resolution():
    task = make_task()
    assert task(torch.randn(2, 3, 64, 96)).shape == (2, 3, 64, 96)


def test_channels_last_gives_the_same_logits():
    x = torch.randn(1, 3, 64, 64)
    a, b = make_task(channels_last=True).eval(), make_task(channels_last=False).eval()
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x), rtol=1e-4, atol=1e-4)


def test_training_fits_a_fixed_batch():
    task = make_task()
    opt = task.optimizer_factory(model=task.net)
    images = torch.randn(2, 3, 64, 64)
    mask = torch.zeros(2, 64, 64, dtype=torch.long)
    mask[:, 16:48, 16:48] = 1
    mask[:, :8] = 2
    mask[0, 0, 0] = 255  # ignored pixel
    batch = {"image": images, "mask": mask}
    task.log = lambda *a, **k: None  # no trainer attached
    first = task.training_step(batch, 0).item()
    for _ in range(25):
        opt.zero_grad()
        task.training_step(batch, 0).backward()
        opt.step()
    last = task.training_step(batch, 0).item()
    assert last < first * 0.3


def fit_tiny(task, tmp_path, train_size, batch_size, **trainer_kwargs):
    """Fit `task` on a few 64x64 synthetic scenes with 3 classes; return the trainer and data."""
    dm = SyntheticDataModule(
        num_classes=3,
        class_names=["bg", "a", "b"],
        image_size=64,
        train_size=train_size,
        val_size=3,
        test_size=2,
        batch_size=batch_size,
    )
    trainer = L.Trainer(
        logger=False,
        accelerator="cpu",
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        **trainer_kwargs,
    )
    trainer.fit(task, dm)
    return trainer, dm


@pytest.mark.parametrize(
    ("factory", "interval", "arg"),
    [
        (
            functools.partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=1e-3),
            "step",
            "total_steps",
        ),
        (
            functools.partial(torch.optim.lr_scheduler.PolynomialLR, power=0.9),
            "step",
            "total_iters",
        ),
        (functools.partial(torch.optim.lr_scheduler.CosineAnnealingLR), "epoch", "T_max"),
    ],
)
def test_scheduler_gets_the_run_length(tmp_path, factory, interval, arg):
    task = make_task(scheduler=factory, interval=interval)
    trainer, _ = fit_tiny(
        task, tmp_path, train_size=12, batch_size=4, max_epochs=2, limit_val_batches=0
    )
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    expected = 6 if interval == "step" else 2  # 3 batches x 2 epochs, or 2 epochs
    assert getattr(scheduler, arg) == expected
    assert trainer.lr_scheduler_configs[0].interval == interval


def test_onecycle_schedules_a_run_with_exactly_one_warm_up_step(tmp_path):
    """10 steps at pct_start 0.1, where PyTorch's OneCycleLR alone divides by zero."""
    factory = functools.partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=1e-3, pct_start=0.1)
    with pytest.raises(ZeroDivisionError):
        factory(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-3), total_steps=10)
    task = make_task(scheduler=factory)
    trainer, _ = fit_tiny(
        task, tmp_path, train_size=8, batch_size=4, max_epochs=5, limit_val_batches=0
    )
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert scheduler.total_steps == 10 and trainer.global_step == 10 == scheduler.last_epoch
    assert scheduler.optimizer.param_groups[0]["max_lr"] == 1e-3


def test_onecycle_peaks_at_each_groups_learning_rate(tmp_path):
    """max_lr left unset: each parameter group peaks at its own rate (encoder_lr_mult holds)."""
    factory = functools.partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=None)
    task = make_task(scheduler=factory, encoder_lr_mult=0.1)
    trainer, _ = fit_tiny(
        task, tmp_path, train_size=8, batch_size=4, max_epochs=1, limit_val_batches=0
    )
    peaks = {g["name"]: g["max_lr"] for g in trainer.optimizers[0].param_groups}
    assert peaks["encoder"] == pytest.approx(3e-4)
    assert peaks["decoder"] == pytest.approx(3e-3)


def test_validation_logs_contract_keys(tmp_path):
    task = make_task()
    trainer, dm = fit_tiny(
        task, tmp_path, train_size=4, batch_size=2, max_epochs=1, limit_train_batches=1
    )
    keys = set(trainer.callback_metrics)
    assert {
        "train/loss",
        "val/loss",
        "val/miou",
        "val/acc",
        "val/iou/bg",
        "val/iou/a",
        "val/iou/b",
    } <= keys
    (test,) = trainer.test(task, dm, verbose=False)
    assert {"test/miou", "test/acc", "test/loss"} <= set(test)


def test_bad_scheduler_interval_is_refused():
    with pytest.raises(ValueError, match="scheduler_interval='batch' is invalid"):
        make_task(interval="batch")
