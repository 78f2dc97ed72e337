"""The domain-adaptation terms on crafted tensors: ADVENT's self-information and entropy,
ClassMix masks and mixing, DACS's pixel weights and weighted cross-entropy."""

from __future__ import annotations

import math

import torch

from segkit.tasks.adaptation_losses import (
    classmix_masks,
    dacs_pixel_weights,
    mean_entropy,
    mix_source_into_target,
    pixel_entropy,
    self_information,
    weighted_cross_entropy,
)


def test_self_information_and_entropy_are_normalised_by_the_class_count():
    # pixel 0: one-hot (entropy 0); pixel 1: uniform over 4 classes (entropy 1);
    # pixel 2: (0.5, 0.5, 0, 0): entropy log 2 / log 4 = 0.5
    probs = torch.tensor(
        [[1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25], [0.5, 0.5, 0.0, 0.0]]
    ).T.reshape(1, 4, 1, 3)
    info = self_information(probs)
    assert info.shape == (1, 4, 1, 3)
    torch.testing.assert_close(info[0, :, 0, 1], torch.full((4,), 0.25 * math.log(4) / math.log(4)))
    torch.testing.assert_close(pixel_entropy(probs), torch.tensor([[[0.0, 1.0, 0.5]]]))
    torch.testing.assert_close(mean_entropy(probs), torch.tensor(0.5))


def test_entropy_gradient_sharpens_the_prediction():
    logits = torch.tensor([0.3, 0.1, -0.2]).view(1, 3, 1, 1).requires_grad_()
    mean_entropy(logits.softmax(1)).backward()
    # descending the entropy raises the leading class and lowers the others
    assert logits.grad[0, 0] < 0 and logits.grad[0, 2] > 0


def test_classmix_takes_half_the_classes_of_each_source_image_never_ignored_pixels():
    labels = torch.tensor(
        [
            [[0, 0, 1, 1], [2, 2, 3, 3], [255, 255, 0, 1]],  # classes 0..3: two chosen
            [[4, 4, 4, 4], [4, 4, 4, 255], [4, 4, 4, 4]],  # one class: it is chosen
        ]
    )
    masks = classmix_masks(labels, 255, torch.Generator().manual_seed(0))
    assert masks.dtype == torch.bool and masks.shape == labels.shape
    chosen = torch.unique(labels[0][masks[0]])
    assert len(chosen) == 2
    # a class is taken whole: every pixel of a chosen class, none of the others
    assert torch.equal(masks[0], torch.isin(labels[0], chosen))
    assert not masks[0][labels[0] == 255].any() and not masks[1][labels[1] == 255].any()
    assert masks[1].sum() == 11
    draws = {
        tuple(
            torch.unique(
                labels[0][classmix_masks(labels, 255, torch.Generator().manual_seed(s))[0]]
            ).tolist()
        )
        for s in range(20)
    }
    assert len(draws) > 1  # the classes are drawn, not fixed
    same = classmix_masks(labels, 255, torch.Generator().manual_seed(0))
    assert torch.equal(same, masks)  # one generator seed, one draw


def test_mixing_pastes_source_pixels_and_labels_with_the_same_mask():
    masks = torch.tensor([[[True, False], [False, True]]])
    source_image, target_image = torch.ones(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)
    mixed = mix_source_into_target(masks, source_image, target_image)
    assert torch.equal(mixed[0, 1], masks[0].float())  # every channel alike
    labels = mix_source_into_target(masks, torch.full((1, 2, 2), 7), torch.full((1, 2, 2), 2))
    assert labels.tolist() == [[[7, 2], [2, 7]]]


def test_dacs_weights_target_pixels_by_the_share_of_confident_ones():
    confidence = torch.tensor([[[0.99, 0.5], [0.97, 0.1]]])
    weights = dacs_pixel_weights(confidence, 0.968)
    torch.testing.assert_close(weights, torch.full((1, 2, 2), 0.5))
    logits = torch.zeros(1, 2, 2, 2)
    labels = torch.tensor([[[0, 1], [255, 0]]])
    loss = weighted_cross_entropy(logits, labels, torch.tensor([[[1.0, 0.5], [1.0, 0.0]]]))
    # cross-entropy of uniform logits is log 2; weights 1 + 0.5 + (ignored) + 0 over 4 pixels
    torch.testing.assert_close(loss, torch.tensor(1.5 * math.log(2) / 4))
