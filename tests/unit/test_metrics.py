"""mIoU, accuracy and per-class IoU against a confusion matrix counted by hand."""

from __future__ import annotations

import math

import pytest
import torch

from segkit.metrics import SegmentationScores, metric_safe_name, scores_from_confusion

IGNORE = 255


def _hand_confusion(preds, target, num_classes):
    confmat = [[0] * num_classes for _ in range(num_classes)]
    for p, t in zip(preds.flatten().tolist(), target.flatten().tolist(), strict=True):
        if t != IGNORE:
            confmat[t][p] += 1
    return confmat


def test_scores_match_hand_counts_with_ignore_and_absent_class():
    # 4 classes; class 3 occurs in neither prediction nor target: left out of the mean.
    target = torch.tensor([[0, 0, 1, 1], [2, 2, IGNORE, IGNORE], [0, 1, 2, 0]])
    preds = torch.tensor([[0, 1, 1, 1], [2, 0, 2, 2], [0, 1, 1, 0]])
    metric = SegmentationScores(4, IGNORE, ["bg", "a", "b", "c"])
    metric.update(preds[:2], target[:2])  # two updates: dataset-level accumulation
    metric.update(preds[2:], target[2:])
    out = metric.compute()

    cm = _hand_confusion(preds, target, 4)
    ious = []
    for c in range(4):
        tp = cm[c][c]
        union = sum(cm[c]) + sum(row[c] for row in cm) - tp
        ious.append(tp / union if union else math.nan)
    # By hand: bg tp=3 fp=1 fn=1 -> 3/5; a tp=3 fp=2 fn=0 -> 3/5; b tp=1 fp=0 fn=2 -> 1/3.
    assert ious[:3] == pytest.approx([0.6, 0.6, 1 / 3])
    assert out["iou/bg"] == pytest.approx(0.6)
    assert out["iou/a"] == pytest.approx(0.6)
    assert out["iou/b"] == pytest.approx(1 / 3)
    assert math.isnan(out["iou/c"])
    assert out["miou"] == pytest.approx((0.6 + 0.6 + 1 / 3) / 3)
    assert out["acc"] == pytest.approx(7 / 10)  # 10 counted pixels, ignore dropped


def test_logits_are_argmaxed():
    target = torch.tensor([[[0, 1], [1, 1]]])
    logits = torch.zeros(1, 2, 2, 2)
    logits[0, 1] = torch.tensor([[-1.0, 1.0], [1.0, -1.0]])  # predicts [[0,1],[1,0]]
    metric = SegmentationScores(2, IGNORE, ["x", "y"])
    metric.update(logits, target)
    out = metric.compute()
    assert out["acc"] == pytest.approx(3 / 4)
    assert out["iou/y"] == pytest.approx(2 / 3)


def test_reset_starts_a_new_dataset():
    metric = SegmentationScores(2, IGNORE, ["x", "y"])
    metric.update(torch.zeros(1, 2, 2, dtype=torch.long), torch.ones(1, 2, 2, dtype=torch.long))
    assert metric.compute()["acc"] == 0.0
    metric.reset()
    metric.update(torch.ones(1, 2, 2, dtype=torch.long), torch.ones(1, 2, 2, dtype=torch.long))
    assert metric.compute()["acc"] == 1.0


def test_all_ignored_gives_nan_not_a_crash():
    scores = scores_from_confusion(torch.zeros(3, 3))
    assert math.isnan(scores["miou"]) and math.isnan(scores["acc"])


def test_class_names_must_match_class_count():
    with pytest.raises(ValueError, match="2 class names for 3 classes"):
        SegmentationScores(3, IGNORE, ["a", "b"])


def test_metric_safe_name():
    assert metric_safe_name("Traffic Light") == "traffic_light"
    assert metric_safe_name("pole/group") == "pole_group"
