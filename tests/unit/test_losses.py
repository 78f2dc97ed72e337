"""Loss configs: every one ranks a perfect prediction below a random one and ignores the
ignore index; segkit's own losses match their definitions."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from segkit.losses import CrossEntropy, OhemCrossEntropy, WeightedSum, median_frequency_weights
from segkit.run.compose import CONF_DIR

# `none` (for Mask R-CNN, which computes its own losses) is covered by test_configs.
LOSSES = sorted(p.stem for p in (Path(CONF_DIR) / "loss").glob("*.yaml") if p.stem != "none")
C, IGNORE = 5, 255


def sample(seed=0):
    gen = torch.Generator().manual_seed(seed)
    mask = torch.randint(0, C, (2, 32, 32), generator=gen)
    mask[:, :3] = IGNORE
    return mask


def perfect_logits(mask):
    return 20.0 * F.one_hot(mask.clamp(max=C - 1), C).permute(0, 3, 1, 2).float()


@pytest.mark.parametrize("name", LOSSES)
def test_loss_config_prefers_the_right_answer(compose_train, name):
    loss = instantiate(compose_train(f"loss={name}").loss, _convert_="all")
    mask = sample()
    random_logits = torch.randn(2, C, 32, 32, generator=torch.Generator().manual_seed(1))
    random_logits.requires_grad_(True)
    perfect, random = loss(perfect_logits(mask), mask), loss(random_logits, mask)
    assert torch.isfinite(random) and torch.isfinite(perfect)
    assert perfect.item() < random.item() - 0.1
    random.backward()
    assert torch.isfinite(random_logits.grad).all()
    assert random_logits.grad.abs().sum() > 0
    # Ignored pixels do not count: any logits there give the same loss.
    changed = random_logits.detach().clone()
    changed[:, :, :3] = 100 * torch.randn(2, C, 3, 32)
    assert loss(changed, mask).item() == pytest.approx(random.item(), rel=1e-5, abs=1e-6)


def test_cross_entropy_matches_torch_with_class_weights_and_smoothing():
    mask, logits = sample(), torch.randn(2, C, 32, 32)
    weights = [0.5, 1.0, 2.0, 1.0, 3.0]
    ours = CrossEntropy(IGNORE, weights, label_smoothing=0.1)(logits, mask)
    ref = F.cross_entropy(
        logits, mask, weight=torch.tensor(weights), ignore_index=IGNORE, label_smoothing=0.1
    )
    torch.testing.assert_close(ours, ref)


def test_unresolved_auto_class_weights_are_refused():
    with pytest.raises(ValueError, match="class_weights='auto' was not resolved"):
        CrossEntropy(class_weights="auto")


def test_ohem_keeps_pixels_below_the_threshold():
    mask, logits = sample(), 2 * torch.randn(2, C, 32, 32)
    pixel = F.cross_entropy(logits, mask, ignore_index=IGNORE, reduction="none")
    valid = mask != IGNORE
    hard = valid & (torch.exp(-pixel) <= 0.3)
    expected = pixel[hard].mean()
    ours = OhemCrossEntropy(IGNORE, thresh=0.3, min_kept=0)(logits, mask)
    torch.testing.assert_close(ours, expected)
    assert 0 < hard.sum() < valid.sum()  # the threshold really selects


def test_ohem_keeps_at_least_min_kept_hardest_pixels_per_image():
    mask, logits = sample(), 2 * torch.randn(2, C, 32, 32)
    pixel = F.cross_entropy(logits, mask, ignore_index=IGNORE, reduction="none")
    valid_losses = pixel[mask != IGNORE]
    # thresh ~0: only the min_kept*batch hardest pixels remain.
    ours = OhemCrossEntropy(IGNORE, thresh=1e-9, min_kept=50)(logits, mask)
    torch.testing.assert_close(ours, valid_losses.topk(100).values.mean())
    # min_kept above the pixel count: plain cross-entropy.
    everything = OhemCrossEntropy(IGNORE, thresh=1e-9, min_kept=10_000)(logits, mask)
    torch.testing.assert_close(everything, F.cross_entropy(logits, mask, ignore_index=IGNORE))


def test_ohem_on_a_fully_ignored_batch_is_zero_not_nan():
    mask = torch.full((1, 8, 8), IGNORE)
    assert OhemCrossEntropy(IGNORE, min_kept=10)(torch.randn(1, C, 8, 8), mask).item() == 0.0


def test_weighted_sum_adds_weighted_terms_and_keeps_them():
    mask, logits = sample(), torch.randn(2, C, 32, 32)
    ce, ohem = CrossEntropy(IGNORE), OhemCrossEntropy(IGNORE, thresh=0.5, min_kept=0)
    total = WeightedSum({"ce": {"loss": ce, "weight": 1.0}, "ohem": {"loss": ohem, "weight": 0.5}})
    value = total(logits, mask)
    torch.testing.assert_close(value, ce(logits, mask) + 0.5 * ohem(logits, mask))
    assert set(total.last_terms) == {"ce", "ohem"}
    as_list = WeightedSum([{"loss": ce, "weight": 2.0}])
    torch.testing.assert_close(as_list(logits, mask), 2 * ce(logits, mask))
    with pytest.raises(ValueError, match="has no 'loss'"):
        WeightedSum({"ce": {"weight": 1.0}})


def test_median_frequency_weights_by_hand():
    # Image 1: 16 pixels of class 0. Image 2: 12 of class 0, 4 of class 1, and ignored pixels.
    # freq0 = 28/32, freq1 = 4/16, median 0.5625; class 2 never appears.
    first = torch.zeros(4, 4, dtype=torch.long)
    second = torch.zeros(4, 5, dtype=torch.long)
    second[0, :4] = 1
    second[:, 4] = IGNORE
    weights = median_frequency_weights([first, second.unsqueeze(0)], 3, IGNORE)
    assert weights == pytest.approx([0.5625 / 0.875, 0.5625 / 0.25, 0.0], rel=1e-5)


def test_median_frequency_weights_refuse_unknown_labels():
    with pytest.raises(ValueError, match=r"mask label 7 is outside 0\.\.2"):
        median_frequency_weights([torch.full((2, 2), 7)], 3, IGNORE)
