"""SemiSupervisedSegmentation and its data: strong views, published split lists, what reaches
which loss, the EMA teacher, config checks."""

from __future__ import annotations

import functools

import albumentations as A
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from segkit.data.labeled_split import listed_indices
from segkit.data.synthetic import SyntheticDataModule
from segkit.optim import build_optimizer
from segkit.run.config_checks import ConfigError, check_train_config
from segkit.tasks.consistency import WeakToStrong
from segkit.tasks.semi import SemiSupervisedSegmentation
from tests.unit.test_adversarial_task import Scenes, make_trainer
from tests.unit.test_consistency import TinyNet

JITTER = A.Compose([A.ColorJitter(brightness=0.5, contrast=0.5, saturation=0.5, hue=0.2, p=1.0)])


class WithViews(Dataset):
    """Unlabeled samples with two strong views (noisy copies of the weak image)."""

    def __init__(self, n: int) -> None:
        self.scenes = Scenes(n, labeled=False, offset=1)

    def __len__(self) -> int:
        return len(self.scenes)

    def __getitem__(self, i: int) -> dict:
        sample = self.scenes[i]
        noise = torch.randn(2, *sample["image"].shape, generator=torch.Generator().manual_seed(i))
        return {**sample, "strong": sample["image"][None] + 0.1 * noise}


class RecordingLoss(nn.Module):
    """Cross-entropy that keeps every mask it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.masks: list[torch.Tensor] = []

    def forward(self, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        self.masks.append(mask.clone())
        return nn.functional.cross_entropy(logits, mask, ignore_index=255)


def make_task(loss=None, **consistency) -> SemiSupervisedSegmentation:
    torch.manual_seed(0)
    return SemiSupervisedSegmentation(
        net=TinyNet(),
        loss=loss or nn.CrossEntropyLoss(ignore_index=255),
        optimizer=functools.partial(build_optimizer, optimizer="torch.optim.AdamW", lr=1e-2),
        consistency=WeakToStrong(**{"threshold": 0.5, **consistency}),
        num_classes=3,
    )


def semi_loaders(labeled_n: int = 4, unlabeled_n: int = 6) -> dict[str, DataLoader]:
    return {
        "labeled": DataLoader(Scenes(labeled_n), batch_size=2),
        "unlabeled": DataLoader(WithViews(unlabeled_n), batch_size=2),
        "unlabeled_mix": DataLoader(WithViews(unlabeled_n), batch_size=2, shuffle=True),
    }


def test_unlabeled_batches_never_reach_the_supervised_loss(tmp_path):
    loss = RecordingLoss()
    task = make_task(loss=loss, fp_weight=0.5)
    make_trainer(tmp_path, max_epochs=1).fit(task, train_dataloaders=semi_loaders())
    labeled_masks = {tuple(Scenes(4)[i]["mask"].flatten().tolist()) for i in range(4)}
    assert len(loss.masks) == 3  # one per step: the unlabeled loader's 3 batches, labeled cycles
    for batch in loss.masks:
        for mask in batch:
            assert tuple(mask.flatten().tolist()) in labeled_masks


def test_each_step_trains_on_both_parts_and_updates_the_ema_teacher(tmp_path):
    task = make_task(ema_momentum=0.99, threshold=0.0)
    start = [p.clone() for p in task.net.parameters()]
    trainer = make_trainer(tmp_path, max_epochs=1)
    trainer.fit(task, train_dataloaders=semi_loaders())
    assert trainer.global_step == 3 and int(task.teacher.updates) == 3
    assert not all(torch.equal(a, b) for a, b in zip(start, task.net.parameters(), strict=True))
    # the teacher lags the student (momentum), and it is in the checkpointed state
    assert not all(
        torch.equal(t, s)
        for t, s in zip(task.teacher.net.parameters(), task.net.parameters(), strict=True)
    )
    assert any(k.startswith("teacher.net.") for k in task.state_dict())
    logged = trainer.callback_metrics
    for key in ("train/sup_loss", "train/unsup_loss", "train/mask_ratio", "train/fp_loss"):
        assert key not in logged or torch.isfinite(logged[key])
    for key in ("train/sup_loss", "train/unsup_loss", "train/mask_ratio"):
        assert key in logged
    assert logged["train/mask_ratio"].item() == 1.0  # threshold 0: every pixel counts


def test_a_batch_without_unlabeled_images_is_refused(tmp_path):
    task = make_task()
    with pytest.raises(ValueError, match=r"data.labeled_fraction < 1 or data.labeled_list"):
        make_trainer(tmp_path, max_epochs=1).fit(
            task, train_dataloaders=DataLoader(Scenes(4), batch_size=2)
        )


def synthetic(**kwargs) -> SyntheticDataModule:
    defaults = dict(image_size=32, train_size=16, val_size=2, test_size=2, batch_size=4)
    return SyntheticDataModule(**{**defaults, **kwargs})


def test_unlabeled_samples_carry_aligned_strong_views_and_their_hidden_masks_only():
    dm = synthetic(
        labeled_fraction=0.25, strong_views=2, strong_transform=JITTER, unlabeled_true_masks=True
    )
    _, unlabeled = dm.labeled_split()
    sample = unlabeled[0]
    assert set(sample) == {"image", "name", "strong", "true_mask"}  # no "mask"
    assert sample["strong"].shape == (2, 3, 32, 32)
    plain = dm.dataset("train")[unlabeled.indices[0]]
    assert torch.equal(sample["image"], plain["image"])  # weak = the training pipeline's view
    assert torch.equal(sample["true_mask"], plain["mask"])
    assert not torch.allclose(sample["strong"][0], sample["image"])
    assert not torch.allclose(sample["strong"][0], sample["strong"][1])  # independent draws
    assert "strong" not in dm.dataset("train")[0]  # the labeled dataset is unchanged
    loaders = dm.train_dataloader()
    batch = next(iter(loaders["unlabeled"]))
    assert batch["strong"].shape == (4, 2, 3, 32, 32)
    # CutMix partners: the same unlabeled samples in another order.
    orders = [list(loaders[k].sampler) for k in ("unlabeled", "unlabeled_mix")]
    assert sorted(orders[0]) == sorted(orders[1]) and orders[0] != orders[1]
    assert loaders["unlabeled_mix"].dataset is loaders["unlabeled"].dataset
    assert "true_mask" not in synthetic(labeled_fraction=0.25).labeled_split()[1][0]
    assert "unlabeled_mix" not in synthetic(labeled_fraction=0.25).train_dataloader()


def test_the_weak_pipeline_reports_the_pixels_it_padded():
    crop = A.Compose([A.RandomCrop(40, 32, pad_if_needed=True, fill=0, fill_mask=255)])
    dm = synthetic(labeled_fraction=0.25, strong_views=1, strong_transform=JITTER)
    dm.train_transform = crop  # 32x32 scenes: 8 rows of padding
    sample = dm.labeled_split()[1][0]
    assert sample["image"].shape == (3, 40, 32) and sample["padding"].dtype == torch.bool
    assert sample["padding"].sum().item() == 8 * 32  # exactly the padded rows


def test_strong_views_need_a_pipeline():
    with pytest.raises(ValueError, match=r"data.strong_views=2"):
        synthetic(labeled_fraction=0.5, strong_views=2)


def test_labeled_list_reads_names_and_published_paths(tmp_path):
    names = ["2007_000032", "2007_000039", "aachen_000000_000019", "b"]
    listing = tmp_path / "labeled.txt"
    listing.write_text(
        "2007_000032\n"
        "JPEGImages/2007_000039.jpg SegmentationClass/2007_000039.png\n"
        "\n"
        "leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png gtFine/x.png\n"
    )
    assert listed_indices(names, listing) == ([0, 1, 2], [3])
    listing.write_text("2007_000032\nnot_a_sample\n")
    with pytest.raises(ValueError, match=r"labeled.txt, line 2: 'not_a_sample' names no"):
        listed_indices(names, listing)
    with pytest.raises(FileNotFoundError, match=r"missing.txt"):
        listed_indices(names, tmp_path / "missing.txt")


def test_labeled_list_chooses_the_labeled_samples_of_a_datamodule(tmp_path):
    listing = tmp_path / "split.txt"
    dm = synthetic()
    chosen = [dm.dataset("train").sample_name(i) for i in (3, 5, 7, 9)]
    listing.write_text("\n".join(chosen) + "\n")
    dm = synthetic(labeled_list=str(listing))
    labeled, unlabeled = dm.labeled_split()
    assert labeled.indices == [3, 5, 7, 9] and len(unlabeled) == 12
    dm.write_labeled_split(tmp_path)
    record = (tmp_path / "labeled_split.json").read_text()
    assert chosen[0] in record and str(listing) in record
    with pytest.raises(ValueError, match=r"set one of them"):
        synthetic(labeled_list=str(listing), labeled_fraction=0.5)


def test_semi_models_without_unlabeled_data_or_views_fail_before_training(compose_train):
    with pytest.raises(ConfigError, match=r"data.labeled_fraction < 1 or data.labeled_list"):
        check_train_config(compose_train("model=semi"))
    cfg = compose_train("model=semi", "data.labeled_fraction=0.5", "data.strong_views=0")
    with pytest.raises(ConfigError, match=r"data.strong_views=0"):
        check_train_config(cfg)
    for method in ("fixmatch", "unimatch", "fixmatch_hung2018"):
        check_train_config(
            compose_train("model=semi", f"model/method={method}", "data.labeled_fraction=0.5")
        )


def test_the_discriminator_gates_pseudo_labels_in_the_combined_method(tmp_path):
    """fixmatch_hung2018: every pixel is confident (threshold 0), but from semi_start a
    discriminator that accepts nothing vetoes them all; the adversarial steps still alternate."""
    from tests.unit.test_adversarial_task import make_task as make_adversarial

    ratios = {}
    for semi_start in (0, 100):
        task = make_adversarial(
            "hung2018",
            consistency=WeakToStrong(threshold=0.0),
            # no confidence exceeds semi_threshold
            method_kwargs={"semi_start": semi_start, "semi_threshold": 1.0},
        )
        trainer = make_trainer(tmp_path, max_epochs=1)
        trainer.fit(task, train_dataloaders=semi_loaders())
        assert trainer.global_step == 6  # 3 batches, a segmenter and a discriminator step each
        logged = trainer.callback_metrics
        for key in ("train/sup_loss", "train/unsup_loss", "train/d_loss", "train/adv_loss"):
            assert torch.isfinite(logged[key]), key
        ratios[semi_start] = logged["train/mask_ratio"].item()
    assert ratios[0] == 0.0 and ratios[100] == 1.0


def test_consistency_needs_an_adversarial_method_that_learns_unlabeled_images():
    from tests.unit.test_adversarial_task import make_task as make_adversarial

    with pytest.raises(ValueError, match=r"Luc2016: it does not learn from unlabeled"):
        make_adversarial("luc2016", consistency=WeakToStrong())
