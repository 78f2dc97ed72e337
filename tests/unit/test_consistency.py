"""Weak-to-strong consistency (segkit.tasks.consistency): thresholds, CutMix, where the
pseudo-labels come from, the feature-perturbed stream and the EMA teacher."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from segkit.tasks.consistency import WeakToStrong
from segkit.tasks.perturbations import cutmix_boxes, feature_dropout, mix
from segkit.tasks.pseudo_labels import confident_pixels
from segkit.tasks.teacher import EMATeacher

C = 3


class TinyNet(nn.Module):
    """An encoder (conv) and a head, as smp models expose them."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.encoder = nn.Conv2d(3, 8, 3, padding=1)
        self.head = nn.Conv2d(8, C, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.encoder(x)))


def test_threshold_mask_is_confidence_above_threshold_on_crafted_logits():
    # Two classes: logits (0, 0) give confidence exactly 0.5 (not above 0.5), (1, 0) 0.731,
    # (0, 2) 0.881.
    logits = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 2.0]]).view(1, 2, 1, 3)
    probs = logits.softmax(1)
    pseudo, confidence, selected = confident_pixels(probs, 0.5)
    assert pseudo.tolist() == [[[0, 0, 1]]]
    torch.testing.assert_close(
        confidence, torch.tensor([[[0.5, 0.7311, 0.8808]]]), atol=1e-4, rtol=0
    )
    assert selected.tolist() == [[[False, True, True]]]
    assert confident_pixels(probs, 0.8)[2].tolist() == [[[False, False, True]]]
    for threshold in (0.0, 0.6, 0.95):
        assert torch.equal(confident_pixels(probs, threshold)[2], confidence > threshold)


def test_cutmix_mixes_images_and_pseudo_labels_with_the_same_boxes():
    torch.manual_seed(0)
    batch, height, width = 6, 32, 40
    boxes = cutmix_boxes(batch, height, width, prob=1.0)
    # Image i is filled with i on every channel and its pseudo-labels are i, its partner's
    # with 10 + i: after mixing with the same boxes, every pixel's value names its label.
    images = (
        torch.arange(batch, dtype=torch.float32).view(batch, 1, 1, 1).expand(-1, 3, height, width)
    )
    pseudo = torch.arange(batch).view(batch, 1, 1).expand(-1, height, width)
    mixed_images, mixed_pseudo = mix(images, boxes, images + 10), mix(pseudo, boxes, pseudo + 10)
    assert torch.equal(mixed_images[:, 0].long(), mixed_pseudo)
    for i in range(batch):
        inside = boxes[i]
        area = inside.float().mean().item()
        assert 0.0 < area <= 0.45  # one box of 2-40% of the image (integer rounding)
        assert (mixed_pseudo[i][inside] == 10 + i).all()  # the partner batch's image i
        assert (mixed_pseudo[i][~inside] == i).all()
    assert not cutmix_boxes(batch, height, width, prob=0.0).any()


def test_the_cutmix_partner_is_another_batch_even_at_one_image():
    """At one image per device, mixing within the batch would paste an image into itself:
    the partner batch's image and pseudo-labels fill the box (UniMatch)."""
    net = TinyNet()
    torch.manual_seed(3)
    own = {"image": torch.randn(1, 3, 16, 16), "strong": torch.randn(1, 1, 3, 16, 16)}
    partner = {"image": torch.randn(1, 3, 16, 16), "strong": torch.randn(1, 1, 3, 16, 16)}
    method = WeakToStrong(threshold=0.0, cutmix_prob=1.0)
    out = method(net, net, own, generator=torch.Generator().manual_seed(0), partner=partner)
    boxes = cutmix_boxes(1, 16, 16, 1.0, generator=torch.Generator().manual_seed(0))
    expected = torch.where(boxes[:, None], partner["strong"][:, 0], own["strong"][:, 0])
    assert torch.equal(out.strong_images, expected) and boxes.any() and not boxes.all()
    with torch.no_grad():
        target = torch.where(boxes, net(partner["image"]).argmax(1), net(own["image"]).argmax(1))
    torch.testing.assert_close(out.loss, F.cross_entropy(net(expected), target))
    with pytest.raises(ValueError, match=r"second unlabeled batch.*'unlabeled_mix'"):
        method(net, net, own)


def test_pseudo_labels_are_made_without_dropout():
    """smp's DeepLabV3/V3+ ASPP has dropout: it must not blur the pseudo-labels."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Dropout2d(0.9), nn.Conv2d(8, C, 1))
    weak = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        clean = net.eval()(weak).argmax(1)
    net.train()
    batch = {"image": weak, "strong": weak[:, None].clone(), "true_mask": clean}
    out = WeakToStrong(threshold=0.0, cutmix_prob=0.0)(net, net, batch)
    assert out.logged["train/pseudo_acc_all"].item() == 1.0  # exactly the dropout-free labels
    assert net[1].training  # the student's dropout is back on for its own forward


def test_padded_pixels_leave_the_loss_and_its_denominator():
    net = TinyNet()
    torch.manual_seed(2)
    weak, strong = torch.randn(2, 3, 8, 8), torch.randn(2, 1, 3, 8, 8)
    padding = torch.zeros(2, 8, 8, dtype=torch.bool)
    padding[:, :, 5:] = True  # the pipeline padded the right three columns
    batch = {"image": weak, "strong": strong, "padding": padding}
    out = WeakToStrong(threshold=0.0, cutmix_prob=0.0)(net, net, batch)
    with torch.no_grad():
        target = net(weak).argmax(1)
    per_pixel = F.cross_entropy(net(strong[:, 0]), target, reduction="none")
    torch.testing.assert_close(out.loss, per_pixel[~padding].mean())
    assert out.logged["train/mask_ratio"].item() == 1.0  # of the pixels that are not padding


def test_a_discriminator_vetoes_confident_pseudo_labels():
    """fixmatch_hung2018's gate: a pixel counts when confident AND selected (an OR gate at
    Hung et al.'s 0.2 admitted nearly every pixel, cancelling the 0.95 threshold)."""
    net = TinyNet()
    batch = {"image": torch.randn(2, 3, 8, 8), "strong": torch.randn(2, 1, 3, 8, 8)}

    def everything(probs, images):
        return torch.ones(probs.shape[0], *probs.shape[2:], dtype=torch.bool)

    def nothing(probs, images):
        return ~everything(probs, images)

    for threshold, select, ratio in (
        (1.0, everything, 0.0),
        (0.0, nothing, 0.0),
        (0.0, everything, 1.0),
    ):
        method = WeakToStrong(threshold=threshold, cutmix_prob=0.0)
        assert method(net, net, batch, select=select).logged["train/mask_ratio"].item() == ratio


def test_pseudo_labels_come_from_the_weak_view_and_never_reach_the_gradient():
    net = TinyNet()
    torch.manual_seed(1)
    weak = torch.randn(2, 3, 16, 16)
    strong = torch.randn(2, 1, 3, 16, 16)  # unrelated to the weak view: the source matters
    method = WeakToStrong(threshold=0.0, cutmix_prob=0.0)
    out = method(net, net, {"image": weak, "strong": strong})
    out.loss.backward()
    got = [p.grad.clone() for p in net.parameters()]

    net.zero_grad()
    with torch.no_grad():
        target = net(weak).argmax(1)
    expected = F.cross_entropy(net(strong[:, 0]), target)
    expected.backward()
    torch.testing.assert_close(out.loss, expected)
    for a, b in zip(got, [p.grad for p in net.parameters()], strict=True):
        torch.testing.assert_close(a, b)
    assert out.logged["train/mask_ratio"].item() == 1.0


def test_unselected_pixels_and_the_unsup_weight_scale_the_loss():
    net = TinyNet()
    batch = {"image": torch.randn(2, 3, 8, 8), "strong": torch.randn(2, 2, 3, 8, 8)}
    assert WeakToStrong(threshold=1.0, cutmix_prob=0.0)(net, net, batch).loss.item() == 0.0
    full = WeakToStrong(threshold=0.0, cutmix_prob=0.0)(net, net, batch).loss
    half = WeakToStrong(threshold=0.0, cutmix_prob=0.0, unsup_weight=0.5)(net, net, batch).loss
    torch.testing.assert_close(half, 0.5 * full)


def test_pseudo_accuracy_uses_the_hidden_masks_only_for_logging():
    net = TinyNet()
    weak = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        predicted = net(weak).argmax(1)
    wrong = (predicted + 1) % C
    batch = {"image": weak, "strong": weak[:, None].clone()}
    method = WeakToStrong(threshold=0.0, cutmix_prob=0.0)
    right = method(net, net, {**batch, "true_mask": predicted})
    assert right.logged["train/pseudo_acc"].item() == 1.0
    assert method(net, net, {**batch, "true_mask": wrong}).logged["train/pseudo_acc"].item() == 0
    torch.testing.assert_close(right.loss, method(net, net, batch).loss)  # the loss ignores it


def test_missing_strong_views_are_refused_with_the_setting_to_change():
    with pytest.raises(ValueError, match=r"data.strong_views"):
        WeakToStrong()(TinyNet(), TinyNet(), {"image": torch.randn(1, 3, 8, 8)})


def test_feature_dropout_perturbs_encoder_features_only_while_active():
    net = TinyNet()
    x = torch.randn(2, 3, 8, 8)
    clean = net(x)
    torch.manual_seed(0)
    with feature_dropout(net, 0.5):
        perturbed = net(x)
        features = net.encoder(x)
    assert not torch.allclose(perturbed, clean)
    zeroed = (features.flatten(2).abs().sum(-1) == 0).float().mean().item()
    assert 0.2 < zeroed < 0.8  # whole channels dropped, about half of them
    torch.testing.assert_close(net(x), clean)  # the hook is gone
    with pytest.raises(TypeError, match=r"encoder"), feature_dropout(nn.Conv2d(3, 3, 1), 0.5):
        pass


def test_unimatch_weighs_strong_views_and_the_perturbed_stream():
    net = TinyNet()
    batch = {"image": torch.randn(2, 3, 8, 8), "strong": torch.randn(2, 2, 3, 8, 8)}
    # Dropout rate 0: the perturbed stream is the weak view's forward, a known number.
    method = WeakToStrong(threshold=0.0, cutmix_prob=0.0, fp_weight=0.5, feature_dropout=0.0)
    out = method(net, net, batch)
    with torch.no_grad():
        target = net(batch["image"]).argmax(1)
    strong = [F.cross_entropy(net(batch["strong"][:, v]), target) for v in range(2)]
    fp = F.cross_entropy(net(batch["image"]), target)
    torch.testing.assert_close(out.loss, 0.25 * strong[0] + 0.25 * strong[1] + 0.5 * fp)
    torch.testing.assert_close(out.logged["train/fp_loss"], fp)


def test_ema_teacher_starts_as_the_student_then_averages():
    student = TinyNet()
    teacher = EMATeacher(student, momentum=0.9)
    with torch.no_grad():
        for p in student.parameters():
            p.add_(1.0)  # e.g. pretrained weights loaded after the teacher was built
    teacher.update(student)  # first update: a copy (warm-up momentum 0)
    for t, s in zip(teacher.net.parameters(), student.parameters(), strict=True):
        assert torch.equal(t, s) and not t.requires_grad
    before = [p.clone() for p in teacher.net.parameters()]
    with torch.no_grad():
        for p in student.parameters():
            p.add_(1.0)
    teacher.update(student)  # second: momentum min(0.9, 1 - 1/2) = 0.5
    for t, b, s in zip(teacher.net.parameters(), before, student.parameters(), strict=True):
        torch.testing.assert_close(t, 0.5 * b + 0.5 * s)
    assert int(teacher.updates) == 2 and bool(teacher.initialised)


def test_ema_teacher_normalises_with_running_or_batch_statistics():
    torch.manual_seed(0)
    student = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Dropout2d(0.5))
    with torch.no_grad():  # running statistics far from any batch's (e.g. another domain's)
        student[1].running_mean.fill_(5.0)
        student[1].running_var.fill_(9.0)
    images = torch.randn(4, 3, 8, 8) * 2 + 1
    conv = student[0](images).detach()
    batch_mean = conv.mean((0, 2, 3), keepdim=True)
    batch_var = conv.var((0, 2, 3), unbiased=False, keepdim=True)

    running = EMATeacher(student, momentum=0.9)  # eval mode: running statistics, no dropout
    torch.testing.assert_close(running(images, student), (conv - 5.0) / (9.0 + 1e-5) ** 0.5)

    batch = EMATeacher(student, momentum=0.9, normalization="batch")
    buffers = [b.clone() for b in batch.net.buffers()]
    out = batch(images, student)
    # The batch's own statistics, dropout still off, running buffers untouched.
    torch.testing.assert_close(out, (conv - batch_mean) / (batch_var + 1e-5).sqrt())
    for before, after in zip(buffers, batch.net.buffers(), strict=True):
        assert torch.equal(before, after)
    assert batch.net[1].track_running_stats and batch.net[1].training  # as before the call
    with pytest.raises(ValueError, match=r"normalization='train'.*running, batch"):
        EMATeacher(student, momentum=0.9, normalization="train")


def test_consistency_settings_are_checked():
    with pytest.raises(ValueError, match=r"threshold=1.5"):
        WeakToStrong(threshold=1.5)
    with pytest.raises(ValueError, match=r"ema_momentum=1.0"):
        WeakToStrong(ema_momentum=1.0)
