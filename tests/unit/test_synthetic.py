"""Synthetic scenes: deterministic, masks and instances agree, all classes occur, contracts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segkit.data.scenes import CLASS_NAMES, SceneSpec, render_scene, split_seed
from segkit.data.synthetic import SyntheticDataModule, SyntheticScenes


def test_same_seed_and_index_give_the_same_scene():
    spec = SceneSpec(height=64, width=80)
    a, b = render_scene(spec, 3, 7), render_scene(spec, 3, 7)
    assert np.array_equal(a.image, b.image)
    assert np.array_equal(a.mask, b.mask)
    assert np.array_equal(a.instance_masks, b.instance_masks)
    c = render_scene(spec, 4, 7)
    assert not np.array_equal(a.image, c.image)


def test_semantic_mask_equals_the_painted_instances():
    spec = SceneSpec(height=64, width=64, max_objects=8)
    for index in range(30):
        scene = render_scene(spec, 0, index)
        assert scene.image.shape == (64, 64, 3) and scene.image.dtype == np.uint8
        painted = np.zeros_like(scene.mask)
        for m, label in zip(scene.instance_masks, scene.labels, strict=True):
            assert m.any(), "every kept instance has visible pixels"
            assert not painted[m].any(), "visible instance masks do not overlap"
            painted[m] = label
        assert np.array_equal(painted, scene.mask)


def test_all_classes_occur_and_objects_touch():
    spec = SceneSpec(num_classes=7, height=64, width=64)
    seen, touching = set(), 0
    for index in range(40):
        scene = render_scene(spec, 1, index)
        seen.update(np.unique(scene.mask).tolist())
        for i in range(len(scene.labels)):
            # Grow instance i by one pixel (4-neighbourhood): does it reach another instance?
            m = scene.instance_masks[i]
            grown = m.copy()
            grown[1:] |= m[:-1]
            grown[:-1] |= m[1:]
            grown[:, 1:] |= m[:, :-1]
            grown[:, :-1] |= m[:, 1:]
            others = np.delete(scene.instance_masks, i, axis=0).any(0)
            touching += int((grown & others).any())
    assert seen == set(range(7))
    assert touching > 40  # of ~160 objects: touching and occlusion are common, not rare


def test_colour_alone_does_not_solve_the_classes():
    # Nearest-class-mean on each object's mean colour (the best use of colour alone, fitted on
    # the test objects themselves) still misclassifies many objects at the default difficulty.
    spec = SceneSpec(height=64, width=64)
    colours, labels = [], []
    for index in range(80):
        scene = render_scene(spec, 2, index)
        for m, label in zip(scene.instance_masks, scene.labels, strict=True):
            if m.sum() > 30:
                colours.append(scene.image[m].mean(0))
                labels.append(label)
    colours, labels = np.array(colours), np.array(labels)
    means = np.stack([colours[labels == c].mean(0) for c in range(1, 5)])
    predicted = 1 + np.argmin(((colours[:, None] - means[None]) ** 2).sum(-1), axis=1)
    accuracy = (predicted == labels).mean()
    assert 0.3 < accuracy < 0.75  # better than chance (0.25), far from solved


def test_splits_are_different_streams():
    assert len({split_seed(0, s) for s in ("train", "val", "test")}) == 3
    assert split_seed(1, "train") not in {split_seed(0, s) for s in ("train", "val", "test")}
    with pytest.raises(ValueError, match="split 'dev' is unknown"):
        split_seed(0, "dev")


def test_semantic_sample_contract():
    ds = SyntheticScenes(SceneSpec(height=64, width=96), seed=0, length=3)
    sample = ds[1]
    assert sample["image"].dtype == torch.float32 and sample["image"].shape == (3, 64, 96)
    assert sample["mask"].dtype == torch.int64 and sample["mask"].shape == (64, 96)
    assert abs(float(sample["image"].mean())) < 2.0  # normalised, not 0..255
    assert isinstance(sample["name"], str)
    with pytest.raises(IndexError):
        ds[3]


def test_instance_sample_contract_matches_semantic_mask():
    spec = SceneSpec(height=64, width=64)
    semantic = SyntheticScenes(spec, seed=5, length=4)
    instance = SyntheticScenes(spec, seed=5, length=4, mode="instance")
    for i in range(4):
        sample, mask = instance[i], semantic[i]["mask"]
        image, target = sample["image"], sample["target"]
        assert image.dtype == torch.float32 and image.min() >= 0.0 and image.max() <= 1.0
        n = len(target["labels"])
        assert target["boxes"].shape == (n, 4) and target["boxes"].dtype == torch.float32
        assert target["masks"].shape == (n, 64, 64) and target["masks"].dtype == torch.uint8
        assert target["labels"].dtype == torch.int64 and bool((target["labels"] >= 1).all())
        rebuilt = torch.zeros_like(mask)
        for m, label, box in zip(target["masks"], target["labels"], target["boxes"], strict=True):
            rebuilt[m.bool()] = label
            ys, xs = torch.nonzero(m, as_tuple=True)
            assert box.tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        assert torch.equal(rebuilt, mask)


def test_scene_with_no_objects_has_empty_instance_target():
    ds = SyntheticScenes(
        SceneSpec(height=32, width=32, min_objects=0, max_objects=0),
        seed=0,
        length=1,
        mode="instance",
    )
    target = ds[0]["target"]
    assert target["boxes"].shape == (0, 4) and target["masks"].shape == (0, 32, 32)


def test_datamodule_batches_and_split_sizes():
    dm = SyntheticDataModule(image_size=64, train_size=10, val_size=3, test_size=2, batch_size=4)
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 3, 64, 64) and batch["mask"].shape == (4, 64, 64)
    assert len(dm.train_dataloader()) == 2  # drop_last on train
    assert sum(len(b["name"]) for b in dm.val_dataloader()) == 3
    assert sum(len(b["name"]) for b in dm.test_dataloader()) == 2


def test_datamodule_instance_collate_keeps_lists():
    dm = SyntheticDataModule(image_size=64, train_size=4, batch_size=2, task="instance")
    batch = next(iter(dm.train_dataloader()))
    assert isinstance(batch["image"], list) and len(batch["target"]) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_classes": 9, "class_names": [*list(CLASS_NAMES), "a", "b"]}, "num_classes=9"),
        (
            {"num_classes": 3, "class_names": CLASS_NAMES[:5]},
            "class_names has 5 names but data.num_classes=3",
        ),
        ({"difficulty": 1.5}, "difficulty=1.5"),
        ({"min_objects": 4, "max_objects": 2}, r"objects range \[4, 2\]"),
    ],
)
def test_datamodule_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SyntheticDataModule(**kwargs)


def test_cache_returns_the_rendered_scene_and_transforms_still_run():
    spec = SceneSpec(height=32, width=32)
    calls = []

    def flip(image, mask):
        calls.append(1)
        image[:] = image[:, ::-1].copy()  # in place, as some transforms do
        mask[:] = mask[:, ::-1].copy()
        return {"image": image, "mask": mask}

    cached = SyntheticScenes(spec, seed=1, length=2, cache=True, transform=flip)
    fresh = SyntheticScenes(spec, seed=1, length=2, transform=flip)
    first, again = cached[1], cached[1]
    assert torch.equal(first["mask"], fresh[1]["mask"])
    assert torch.equal(first["image"], again["image"])  # the cache was not flipped in place
    assert len(cached._cache) == 1 and len(calls) == 3  # rendered once, transformed each time
