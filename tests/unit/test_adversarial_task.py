"""AdversarialSegmentation: alternating steps, step counts, resume, semi-supervision, losses."""

from __future__ import annotations

import functools
import math

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from segkit.models.discriminators import (
    ConfidenceDiscriminator,
    PairDiscriminator,
    PatchDiscriminator,
)
from segkit.optim import build_optimizer, poly_with_warmup
from segkit.tasks.adversarial import AdversarialSegmentation
from segkit.tasks.gan_losses import KINDS, confidence, discriminator_loss, generator_loss
from segkit.tasks.methods.hung2018 import Hung2018, self_training_mask
from segkit.tasks.methods.luc2016 import Luc2016
from segkit.tasks.methods.pix2pix import Pix2Pix

C, SIZE = 3, 32


class Scenes(Dataset):
    """Fixed random images whose mask is a function of the image (learnable, deterministic)."""

    def __init__(self, n: int, labeled: bool = True, offset: int = 0) -> None:
        g = torch.Generator().manual_seed(offset)
        self.images = torch.randn(n, 3, SIZE, SIZE, generator=g)
        self.labeled = labeled

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        image = self.images[i]
        if not self.labeled:
            return {"image": image, "name": f"u{i}"}
        mask = (image[0] > 0).long() + (image[1] > 1).long()
        mask[:2, :2] = 255  # a few ignored pixels
        return {"image": image, "mask": mask, "name": f"l{i}"}


def tiny_segmenter() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, C, 1))


def discriminator_for(method: str) -> nn.Module:
    if method == "hung2018":
        return ConfidenceDiscriminator(C, base_channels=8)
    if method == "pix2pix":
        return PatchDiscriminator(C, base_channels=8, norm="none")
    return PairDiscriminator(C, base_channels=8)


#: The model/method presets of model=gan and their classes.
METHODS = {"luc2016": Luc2016, "hung2018": Hung2018, "pix2pix": Pix2Pix}


def make_task(
    method="luc2016", loss=None, scheduler=True, method_kwargs=None, **kwargs
) -> AdversarialSegmentation:
    """A task with ``method``'s object (``method_kwargs``; Hung et al.'s from iteration 0)."""
    torch.manual_seed(0)
    method_kwargs = {**({"semi_start": 0} if method == "hung2018" else {}), **(method_kwargs or {})}
    return AdversarialSegmentation(
        net=tiny_segmenter(),
        discriminator=discriminator_for(method),
        loss=loss or nn.CrossEntropyLoss(ignore_index=255),
        optimizer=functools.partial(build_optimizer, optimizer="torch.optim.AdamW", lr=1e-2),
        d_optimizer=functools.partial(
            build_optimizer, optimizer="torch.optim.Adam", lr=1e-3, betas=(0.9, 0.99)
        ),
        scheduler=functools.partial(poly_with_warmup, power=0.9) if scheduler else None,
        d_scheduler=functools.partial(poly_with_warmup, power=0.9) if scheduler else None,
        method=METHODS[method](**method_kwargs),
        num_classes=C,
        **kwargs,
    )


def loaders(labeled_n=8, unlabeled_n=0, batch_size=2):
    labeled = DataLoader(Scenes(labeled_n), batch_size=batch_size)
    if not unlabeled_n:
        return labeled
    unlabeled = DataLoader(Scenes(unlabeled_n, labeled=False, offset=1), batch_size=batch_size + 1)
    return {"labeled": labeled, "unlabeled": unlabeled}


def make_trainer(tmp_path, **kwargs) -> L.Trainer:
    defaults = dict(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        default_root_dir=tmp_path,
        deterministic=True,
    )
    defaults.update(kwargs)
    return L.Trainer(**defaults)


class StepRecorder(L.Callback):
    """Wraps each optimizer's step to record which network's parameters it changed."""

    def __init__(self) -> None:
        self.steps: list[tuple[int, bool, bool]] = []  # (optimizer index, G changed, D changed)

    def on_train_start(self, trainer, pl_module) -> None:
        for index, opt in enumerate(trainer.optimizers):
            opt.step = self._recording(opt.step, index, pl_module)

    def _recording(self, step, index, task):
        def snapshot():
            return (
                [p.detach().clone() for p in task.net.parameters()],
                [p.detach().clone() for p in task.discriminator.parameters()],
            )

        def changed(before, after):
            return any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))

        @functools.wraps(step)
        def wrapped(*args, **kwargs):
            g0, d0 = snapshot()
            out = step(*args, **kwargs)
            g1, d1 = snapshot()
            self.steps.append((index, changed(g0, g1), changed(d0, d1)))
            return out

        return wrapped


@pytest.mark.parametrize("d_steps", [1, 2])
def test_each_step_changes_only_its_own_network_and_steps_are_counted(tmp_path, d_steps):
    task = make_task(d_steps=d_steps)
    recorder = StepRecorder()
    batches = 3
    trainer = make_trainer(
        tmp_path, max_epochs=1, limit_train_batches=batches, callbacks=[recorder]
    )
    trainer.fit(task, train_dataloaders=loaders())

    expected = ([(0, True, False)] + [(1, False, True)] * d_steps) * batches
    assert recorder.steps == expected
    # Lightning counts every optimizer step: global_step = batches x (1 + d_steps).
    assert trainer.global_step == batches * (1 + d_steps)
    assert task.iteration == batches
    # Each scheduler stepped once per batch.
    assert [s.last_epoch for s in task.lr_schedulers()] == [batches, batches]


def test_max_steps_counts_both_networks_and_schedulers_span_the_run(tmp_path):
    task = make_task(d_steps=1)
    trainer = make_trainer(tmp_path, max_steps=6, max_epochs=-1)
    trainer.fit(task, train_dataloaders=loaders())
    assert trainer.global_step == 6 and task.iteration == 3
    # poly_with_warmup was sized to the 3 generator iterations: the lr has decayed to 0.
    g_sched, d_sched = task.lr_schedulers()
    assert g_sched.get_last_lr()[0] == pytest.approx(0.0, abs=1e-12)
    assert d_sched.get_last_lr()[0] == pytest.approx(0.0, abs=1e-12)


class StopAfterFirstEpoch(L.Callback):
    def on_train_epoch_end(self, trainer, pl_module) -> None:
        trainer.should_stop = True


def test_resume_restores_both_optimizers_and_schedulers(tmp_path):
    full = make_task()
    make_trainer(tmp_path / "a", max_epochs=2, limit_train_batches=2).fit(
        full, train_dataloaders=loaders()
    )

    first = make_task()  # the same 2-epoch run, stopped after its first epoch
    ckpt_dir = tmp_path / "b"
    trainer = make_trainer(
        ckpt_dir,
        max_epochs=2,
        limit_train_batches=2,
        enable_checkpointing=True,
        callbacks=[
            L.pytorch.callbacks.ModelCheckpoint(dirpath=ckpt_dir, save_last=True),
            StopAfterFirstEpoch(),
        ],
    )
    trainer.fit(first, train_dataloaders=loaders())
    ckpt = torch.load(ckpt_dir / "last.ckpt", weights_only=True)
    assert len(ckpt["optimizer_states"]) == 2 and len(ckpt["lr_schedulers"]) == 2

    resumed = make_task()
    make_trainer(tmp_path / "c", max_epochs=2, limit_train_batches=2).fit(
        resumed, train_dataloaders=loaders(), ckpt_path=ckpt_dir / "last.ckpt"
    )
    # Adam moments and learning rates carried over: the resumed run ends where the full one did.
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert [s.last_epoch for s in resumed.lr_schedulers()] == [4, 4]


class RecordingLoss(nn.Module):
    """Cross-entropy that records the batch sizes of the logits it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.batch_sizes: list[int] = []
        self.ce = nn.CrossEntropyLoss(ignore_index=255)

    def forward(self, logits, mask):
        self.batch_sizes.append(logits.shape[0])
        return self.ce(logits, mask)


def test_unlabeled_batches_never_reach_the_supervised_loss(tmp_path):
    loss = RecordingLoss()
    task = make_task("hung2018", loss=loss)
    trainer = make_trainer(tmp_path, max_epochs=1, limit_train_batches=3)
    trainer.fit(task, train_dataloaders=loaders(labeled_n=4, unlabeled_n=9))
    # Labeled batches hold 2 images, unlabeled ones 3: only the labeled ones were scored.
    assert loss.batch_sizes == [2, 2, 2]
    assert "train/semi_loss" in trainer.callback_metrics


@pytest.mark.parametrize("method", ["luc2016", "hung2018", "pix2pix"])
@pytest.mark.parametrize("gan_loss", KINDS)
def test_each_method_and_loss_type_trains_with_finite_losses(tmp_path, method, gan_loss):
    extra = {"seg_weight": 100.0} if method == "pix2pix" else {}  # pix2pix's preset
    task = make_task(method, gan_loss=gan_loss, real_label=0.9, gradient_clip_val=1.0, **extra)
    trainer = make_trainer(tmp_path, max_epochs=1, limit_train_batches=3)
    unlabeled_n = 6 if method == "hung2018" else 0
    trainer.fit(task, train_dataloaders=loaders(unlabeled_n=unlabeled_n))
    metrics = trainer.callback_metrics
    keys = ["train/loss", "train/seg_loss", "train/adv_loss", "train/d_loss"]
    keys += ["train/d_real_acc", "train/d_fake_acc"]
    keys += ["train/semi_loss", "train/semi_ratio"] if method == "hung2018" else []
    for key in keys:
        assert math.isfinite(float(metrics[key])), (key, metrics[key])
    assert 0.0 <= float(metrics["train/d_real_acc"]) <= 1.0


def test_warm_up_trains_without_the_adversarial_term(tmp_path):
    task = make_task(adv_start=100)
    trainer = make_trainer(tmp_path, max_epochs=1, limit_train_batches=2)
    trainer.fit(task, train_dataloaders=loaders())
    assert float(trainer.callback_metrics["train/adv_loss"]) == 0.0
    assert float(trainer.callback_metrics["train/d_loss"]) > 0.0  # D learns meanwhile


def test_self_training_mask_is_the_thresholded_confidence():
    conf = torch.tensor([[[[0.1, 0.25], [0.2, 0.9]]]])  # [1,1,2,2]
    d_logits = torch.logit(conf)
    expected = torch.tensor([[[False, True], [False, True]]])
    assert torch.equal(self_training_mask(d_logits, "bce", 0.2), expected)
    # lsgan outputs are the confidence itself.
    assert torch.equal(self_training_mask(conf, "lsgan", 0.2), expected)


def test_self_training_loss_is_cross_entropy_on_the_selected_pixels_only():
    method = Hung2018(semi_threshold=0.5)
    logits = torch.randn(1, C, 2, 2)
    d_logits = torch.logit(torch.tensor([[[[0.9, 0.1], [0.7, 0.3]]]]))
    loss, ratio = method.self_training_loss(logits, d_logits, "bce", 255)
    pseudo = logits.argmax(1)
    per_pixel = nn.functional.cross_entropy(logits, pseudo, reduction="none")[0]
    assert loss.item() == pytest.approx(((per_pixel[0, 0] + per_pixel[1, 0]) / 2).item())
    assert ratio.item() == 0.5
    nothing, none = method.self_training_loss(logits, torch.full_like(d_logits, -10.0), "bce", 255)
    assert nothing.item() == 0.0 and none.item() == 0.0


def test_hung2018_needs_a_per_pixel_discriminator():
    with pytest.raises(ValueError, match="per-pixel discriminator"):
        Hung2018().self_training_loss(torch.randn(1, C, 8, 8), torch.randn(1, 1, 1, 1), "bce", 255)


def test_real_map_is_one_hot_with_the_fake_at_ignored_pixels():
    task = make_task()
    mask = torch.tensor([[[0, 2], [255, 1]]])
    fake = torch.full((1, C, 2, 2), 1.0 / C)
    real = task._real_map(mask, fake)
    assert real[0, :, 0, 0].tolist() == [1.0, 0.0, 0.0]
    assert real[0, :, 0, 1].tolist() == [0.0, 0.0, 1.0]
    assert torch.equal(real[0, :, 1, 0], fake[0, :, 1, 0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "goodfellow"}, "method='goodfellow' is invalid: expected a segkit"),
        ({"gan_loss": "wgan"}, "gan_loss='wgan' is invalid"),
        ({"d_steps": 0}, "d_steps=0 is invalid"),
        ({"real_label": 1.5}, "real_label=1.5 is invalid"),
        ({"recon_loss": "l2"}, "recon_loss='l2' is invalid"),
    ],
)
def test_invalid_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        recon = {"recon_loss": kwargs.pop("recon_loss")} if "recon_loss" in kwargs else {}
        method = kwargs.pop("method", None) or Luc2016(**recon)
        AdversarialSegmentation(
            net=tiny_segmenter(),
            discriminator=discriminator_for("luc2016"),
            loss=nn.CrossEntropyLoss(),
            optimizer=functools.partial(build_optimizer),
            d_optimizer=functools.partial(build_optimizer),
            method=method,
            num_classes=C,
            **kwargs,
        )


def test_gan_losses_match_their_definitions():
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    bce = nn.functional.binary_cross_entropy_with_logits
    assert discriminator_loss(real, fake, "bce").item() == pytest.approx(
        (bce(real, torch.ones(2)) + bce(fake, torch.zeros(2))).item()
    )
    smoothed = bce(real, torch.full((2,), 0.9)) + bce(fake, torch.zeros(2))
    assert discriminator_loss(real, fake, "bce", 0.9).item() == pytest.approx(smoothed.item())
    assert discriminator_loss(real, fake, "lsgan").item() == pytest.approx(
        (((real - 1) ** 2).mean() + (fake**2).mean()).item()
    )
    # hinge: relu(1 - 2) = 0, relu(1 + 1) = 2 -> 1; relu(1 + 0.5) = 1.5, relu(1 - 3) = 0 -> 0.75
    assert discriminator_loss(real, fake, "hinge").item() == pytest.approx(1.75)
    assert generator_loss(fake, "hinge").item() == pytest.approx(1.25)
    assert generator_loss(fake, "bce").item() == pytest.approx(bce(fake, torch.ones(2)).item())
    assert confidence(torch.tensor([1.5, -0.2]), "lsgan").tolist() == [1.0, 0.0]


@pytest.mark.parametrize(
    ("disc", "shape"),
    [
        (PairDiscriminator(C, base_channels=8), (2, 1, 1, 1)),
        (ConfidenceDiscriminator(C, base_channels=8), (2, 1, 64, 64)),
        (PatchDiscriminator(C, base_channels=8), (2, 1, 6, 6)),  # 64/8 - 2: 70x70 patches
        (PatchDiscriminator(C, base_channels=8, spectral_norm=True, norm="none"), (2, 1, 6, 6)),
    ],
)
def test_discriminator_output_shapes(disc, shape):
    label_map = torch.rand(2, C, 64, 64)
    assert disc(label_map, torch.randn(2, 3, 64, 64)).shape == shape
