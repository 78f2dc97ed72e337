"""Parameter groups (encoder learning rate, no decay on norms and biases) and schedules."""

from __future__ import annotations

import itertools
import math

import pytest
import segmentation_models_pytorch as smp
import torch

from segkit.optim import build_optimizer, cosine_with_warmup, param_groups, poly_with_warmup


def unet():
    return smp.Unet("resnet18", encoder_weights=None, classes=3, decoder_channels=(32, 16, 8, 8, 8))


def test_groups_split_encoder_and_no_decay_parameters():
    net = unet()
    groups = {
        g["name"]: g for g in param_groups(net, weight_decay=0.01, encoder_lr_mult=0.1, lr=1.0)
    }
    assert set(groups) == {"encoder", "encoder_no_decay", "decoder", "decoder_no_decay"}
    encoder_ids = {id(p) for p in net.encoder.parameters()}
    for name, group in groups.items():
        in_encoder = name.startswith("encoder")
        assert all((id(p) in encoder_ids) == in_encoder for p in group["params"])
        assert group["lr"] == (0.1 if in_encoder else 1.0)
        no_decay = name.endswith("no_decay")
        assert group["weight_decay"] == (0.0 if no_decay else 0.01)
        assert all((p.ndim <= 1) == no_decay for p in group["params"])
    # Every parameter is in exactly one group; BatchNorm weights and biases have no decay.
    grouped = [id(p) for g in groups.values() for p in g["params"]]
    assert sorted(grouped) == sorted(id(p) for p in net.parameters())
    bn_weight = net.encoder.bn1.weight
    assert any(p is bn_weight for p in groups["encoder_no_decay"]["params"])


def test_frozen_parameters_are_left_out():
    net = unet()
    net.encoder.requires_grad_(False)
    names = {g["name"] for g in param_groups(net, weight_decay=0.01)}
    assert names == {"decoder", "decoder_no_decay"}


def test_encoder_lr_mult_needs_an_encoder():
    with pytest.raises(ValueError, match=r"encoder_lr_mult=0\.1 needs a model with an \.encoder"):
        param_groups(torch.nn.Linear(2, 2), 0.0, encoder_lr_mult=0.1)


def test_build_optimizer_passes_options_and_group_lrs():
    opt = build_optimizer(
        unet(), "torch.optim.SGD", lr=0.01, weight_decay=5e-4, encoder_lr_mult=0.5, momentum=0.9
    )
    assert isinstance(opt, torch.optim.SGD)
    lrs = {g["name"]: g["lr"] for g in opt.param_groups}
    assert lrs == {
        "encoder": 0.005,
        "encoder_no_decay": 0.005,
        "decoder": 0.01,
        "decoder_no_decay": 0.01,
    }
    assert all(g["momentum"] == 0.9 for g in opt.param_groups)


def lrs_over(scheduler_factory, steps, **kwargs):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = scheduler_factory(opt, **kwargs)
    values = []
    for _ in range(steps):
        values.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return values


def test_poly_with_linear_warmup():
    lrs = lrs_over(
        poly_with_warmup, 100, total_iters=100, power=0.9, warmup_iters=10, warmup_ratio=0.1
    )
    assert lrs[0] == pytest.approx(0.1)
    assert lrs[5] == pytest.approx(0.1 + 0.9 * 5 / 10)
    assert lrs[10] == pytest.approx((1 - 10 / 100) ** 0.9)
    assert lrs[60] == pytest.approx((1 - 60 / 100) ** 0.9)
    assert lrs[99] == pytest.approx(0.01**0.9)
    assert all(a > b for a, b in itertools.pairwise(lrs[10:]))  # decays every step


def test_poly_respects_its_floor():
    lrs = lrs_over(poly_with_warmup, 100, total_iters=100, min_lr_ratio=0.05)
    assert min(lrs) == pytest.approx(0.05)


def test_cosine_with_warmup():
    lrs = lrs_over(cosine_with_warmup, 111, total_iters=110, warmup_iters=10, min_lr_ratio=0.1)
    assert lrs[10] == pytest.approx(1.0)
    assert lrs[60] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lrs[110] == pytest.approx(0.1)
