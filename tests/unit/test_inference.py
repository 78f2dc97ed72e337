"""Sliding-window and test-time-augmentation inference (segkit.inference)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from segkit.inference import InferenceOptions, predict_scores, sliding_window_logits


def per_pixel_model(num_classes: int = 4) -> nn.Module:
    """Logits of each pixel from that pixel only: window borders cannot change them."""
    torch.manual_seed(0)
    return nn.Conv2d(3, num_classes, kernel_size=1).eval()


def context_model(num_classes: int = 4) -> nn.Module:
    """Logits depend on neighbours (3x3) and are not flip-symmetric."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, num_classes, 3, padding=1)
    ).eval()


@torch.no_grad()
def test_windows_equal_to_the_stride_tile_the_image_like_whole_inference():
    model, images = per_pixel_model(), torch.randn(2, 3, 64, 96)
    tiled = sliding_window_logits(model, images, window=(32, 32), stride=(32, 32))
    torch.testing.assert_close(tiled, model(images))


@torch.no_grad()
def test_overlapping_windows_average_and_cover_every_pixel():
    model, images = per_pixel_model(), torch.randn(1, 3, 50, 70)  # not multiples of the stride
    torch.testing.assert_close(
        sliding_window_logits(model, images, (32, 32), (20, 24)), model(images)
    )


@torch.no_grad()
def test_overlapping_logits_are_the_mean_of_the_windows():
    model, images = context_model(), torch.randn(1, 3, 32, 48)
    out = sliding_window_logits(model, images, window=(32, 32), stride=(16, 16))
    left, right = model(images[..., :32]), model(images[..., 16:])
    torch.testing.assert_close(out[..., :16], left[..., :16])
    torch.testing.assert_close(out[..., 16:32], (left[..., 16:] + right[..., :16]) / 2)
    torch.testing.assert_close(out[..., 32:], right[..., 16:])


@torch.no_grad()
def test_image_smaller_than_the_window_is_padded_and_cropped_back():
    out = sliding_window_logits(per_pixel_model(), torch.randn(1, 3, 20, 30), (32, 32), (32, 32))
    assert out.shape == (1, 4, 20, 30)


def test_bad_window_is_refused():
    with pytest.raises(ValueError, match="must be positive"):
        sliding_window_logits(per_pixel_model(), torch.randn(1, 3, 8, 8), (0, 8), (8, 8))


@torch.no_grad()
def test_flip_tta_of_a_flip_symmetric_model_equals_plain_inference():
    model, images = per_pixel_model(), torch.randn(2, 3, 32, 40)
    tta = predict_scores(model, images, InferenceOptions(flip=True))
    torch.testing.assert_close(tta.softmax(1), model(images).softmax(1))


@torch.no_grad()
def test_flip_tta_averages_the_flipped_prediction_flipped_back():
    model, images = context_model(), torch.randn(1, 3, 32, 40)
    tta = predict_scores(model, images, InferenceOptions(flip=True))
    expected = (model(images).softmax(1) + model(images.flip(-1)).flip(-1).softmax(1)) / 2
    torch.testing.assert_close(tta.exp(), expected)


@torch.no_grad()
def test_multiscale_predictions_come_back_at_the_input_size():
    model, images = context_model(), torch.randn(1, 3, 32, 48)
    out = predict_scores(model, images, InferenceOptions(scales=[0.5, 1.0, 1.5], flip=True))
    assert out.shape == (1, 4, 32, 48)
    torch.testing.assert_close(out.exp().sum(1), torch.ones(1, 32, 48))  # mean of softmaxes
