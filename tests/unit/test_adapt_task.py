"""DomainAdaptation and its data: what reaches which loss, each method's steps, the pair
datamodule, refused label spaces, the synthetic domain shift."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from torch import nn
from torch.utils.data import DataLoader, Dataset

from segkit.data.domain_pair import DomainPairDataModule
from segkit.data.label_spaces import check_label_spaces
from segkit.data.scenes import SceneSpec, SceneStyle, render_scene
from segkit.data.synthetic import SyntheticDataModule
from segkit.models.discriminators import ConfidenceDiscriminator
from segkit.optim import build_optimizer
from segkit.run.config_checks import ConfigError, check_train_config
from segkit.tasks.adapt import DomainAdaptation
from segkit.tasks.methods.adaptsegnet import AdaptSegNet
from segkit.tasks.methods.advent import ADVENT
from segkit.tasks.methods.dacs import DACS
from segkit.tasks.methods.fda import FDA, low_frequency_swap, robust_entropy
from segkit.tasks.methods.minent import MinEnt
from segkit.tasks.methods.source_only import SourceOnly
from tests.unit.test_adversarial_task import C, Scenes, make_trainer
from tests.unit.test_consistency import TinyNet
from tests.unit.test_semi_task import RecordingLoss


class TargetScenes(Dataset):
    """Unlabeled target samples: another image stream, a strong view, the hidden mask."""

    def __init__(self, n: int) -> None:
        self.scenes = Scenes(n, offset=7)

    def __len__(self) -> int:
        return len(self.scenes)

    def __getitem__(self, i: int) -> dict:
        sample = self.scenes[i]
        image = sample["image"] * 0.5 + 1.0  # a shifted domain
        return {
            "image": image,
            "strong": (image + 0.1)[None],
            "true_mask": sample["mask"],
            "name": f"t{i}",
        }


def pair_loaders(source_n: int = 4, target_n: int = 6) -> dict[str, DataLoader]:
    return {
        "source": DataLoader(Scenes(source_n), batch_size=2),
        "target": DataLoader(TargetScenes(target_n), batch_size=2),
    }


#: The model/method presets of model=adapt and their classes.
METHODS = {
    "source_only": SourceOnly,
    "minent": MinEnt,
    "adaptsegnet": AdaptSegNet,
    "advent": ADVENT,
    "dacs": DACS,
    "fda": FDA,
}


def make_task(
    method: str, loss: nn.Module | None = None, ema_momentum: float | None = None, **kwargs
) -> DomainAdaptation:
    """A task with ``method``'s object; DACS with threshold 0 (every pixel confident)."""
    torch.manual_seed(0)
    adversarial = METHODS[method].needs_discriminator
    optimizer = functools.partial(build_optimizer, optimizer="torch.optim.AdamW", lr=1e-2)
    dacs = {"threshold": 0.0, "ema_momentum": ema_momentum} if method == "dacs" else {}
    return DomainAdaptation(
        net=TinyNet(),
        loss=loss or nn.CrossEntropyLoss(ignore_index=255),
        optimizer=optimizer,
        method=METHODS[method](**dacs),
        discriminator=ConfidenceDiscriminator(C, base_channels=8) if adversarial else None,
        d_optimizer=optimizer if adversarial else None,
        num_classes=C,
        **kwargs,
    )


@pytest.mark.parametrize("method", METHODS)
def test_target_batches_never_reach_the_supervised_loss(tmp_path, method):
    loss = RecordingLoss()
    make_trainer(tmp_path, max_epochs=1).fit(
        make_task(method, loss=loss), train_dataloaders=pair_loaders()
    )
    source_masks = {tuple(Scenes(4)[i]["mask"].flatten().tolist()) for i in range(4)}
    assert len(loss.masks) == 3  # one per step: the target loader's 3 batches, source cycles
    for batch in loss.masks:
        for mask in batch:
            assert tuple(mask.flatten().tolist()) in source_masks


@pytest.mark.parametrize("method", METHODS)
def test_each_method_trains_its_networks_and_logs_its_terms(tmp_path, method):
    task = make_task(method, ema_momentum=0.9 if method == "dacs" else None)
    start = [p.clone() for p in task.parameters()]
    trainer = make_trainer(tmp_path, max_epochs=1)
    trainer.fit(task, train_dataloaders=pair_loaders())
    adversarial = method in ("adaptsegnet", "advent")
    assert trainer.global_step == (6 if adversarial else 3)  # + a discriminator step per batch
    assert task.iteration == 3
    changed = [not torch.equal(a, b) for a, b in zip(start, task.parameters(), strict=True)]
    assert all(changed[: len(list(task.net.parameters()))])  # the segmenter learned
    logged = trainer.callback_metrics
    expected = {
        "source_only": {"train/sup_loss"},
        "minent": {"train/sup_loss", "train/target_entropy", "train/entropy_loss"},
        "adaptsegnet": {"train/adv_loss", "train/d_loss", "train/d_source_acc"},
        "advent": {"train/adv_loss", "train/d_loss", "train/d_target_acc"},
        "dacs": {"train/mix_loss", "train/mix_source_ratio", "train/pseudo_weight"},
        "fda": {"train/sup_loss", "train/target_entropy", "train/entropy_loss"},
    }[method]
    assert expected <= set(logged)
    assert all(torch.isfinite(v) for k, v in logged.items() if k.startswith("train/"))
    if adversarial:
        assert 0.0 <= logged["train/d_source_acc"] <= 1.0
        d_params = list(task.discriminator.parameters())
        assert all(changed[-len(d_params) :])  # the discriminator learned too
    if method == "dacs":
        assert logged["train/pseudo_weight"] == 1.0  # threshold 0: every pixel confident
        assert 0.0 < logged["train/mix_source_ratio"] < 1.0
        assert 0.0 <= logged["train/pseudo_acc_all"] <= 1.0  # hidden target masks: logging
        assert int(task.teacher.updates) == 3
    if method == "source_only":
        assert "train/target_entropy" not in logged


def channel_means(images: torch.Tensor) -> torch.Tensor:
    return images.mean((-2, -1), keepdim=True)


def test_fda_swaps_the_low_frequency_amplitude_and_keeps_the_phase():
    g = torch.Generator().manual_seed(0)
    source, target = torch.rand(2, 3, 32, 40, generator=g), torch.rand(1, 3, 32, 40, generator=g)
    # beta 0: only the zero frequency moves, i.e. each channel's mean becomes the target's.
    shifted = low_frequency_swap(source, target, beta=0.0)
    torch.testing.assert_close(channel_means(shifted), channel_means(target).expand(2, -1, -1, -1))
    torch.testing.assert_close(shifted - channel_means(shifted), source - channel_means(source))
    # beta 0.1 of 32 rows: |fy|, |fx| <= 3 take the target's amplitude and keep the source's
    # phase (but the zero frequency, taken whole); every other frequency stays the source's.
    out, src, tgt = (
        torch.fft.fft2(x.double())
        for x in (low_frequency_swap(source, target, 0.1), source, target)
    )
    tgt = tgt.expand(2, -1, -1, -1)
    fy, fx = torch.fft.fftfreq(32, 1 / 32).abs(), torch.fft.fftfreq(40, 1 / 40).abs()
    band = (fy[:, None] <= 3) & (fx[None, :] <= 3)
    close = functools.partial(torch.testing.assert_close, atol=1e-3, rtol=1e-5)
    close(out[..., ~band], src[..., ~band])
    close(out[..., 0, 0], tgt[..., 0, 0])
    band[0, 0] = False
    close(out[..., band], torch.polar(tgt.abs(), src.angle())[..., band])
    # On normalised inputs it equals the swap of the raw pixels, normalised afterwards.
    mean = torch.tensor([0.4, 0.5, 0.6])[:, None, None]
    std = torch.tensor([0.2, 0.3, 0.25])[:, None, None]
    torch.testing.assert_close(
        low_frequency_swap((source - mean) / std, (target - mean) / std, 0.1),
        (low_frequency_swap(source, target, 0.1) - mean) / std,
        atol=1e-5,
        rtol=1e-5,
    )
    assert low_frequency_swap(source.bfloat16(), target.bfloat16(), 0.1).dtype == torch.bfloat16
    with pytest.raises(ValueError, match=r"source \(3, 32, 40\) and target \(3, 32, 32\)"):
        low_frequency_swap(source, target[..., :32], 0.1)
    # The entropy penalty: (H^2 + 1e-8)^eta, ~1 for uniform predictions, ~0 for one-hot ones.
    uniform, onehot = torch.full((1, C, 2, 2), 1 / C), torch.eye(C)[:, :, None, None]
    assert robust_entropy(uniform, 2.0).item() == pytest.approx(1.0, abs=1e-6)
    assert robust_entropy(onehot, 2.0).item() < 1e-12


def test_fda_trains_on_restyled_source_images(tmp_path):
    seen = []

    class Recording(TinyNet):
        def forward(self, x):
            seen.append(x.detach().clone())
            return super().forward(x)

    task = make_task("fda")
    task.net = Recording()
    task.method = FDA(beta=0.0)
    make_trainer(tmp_path, max_steps=1).fit(task, train_dataloaders=pair_loaders())
    source, target = pair_loaders()["source"], pair_loaders()["target"]
    source, target = next(iter(source))["image"], next(iter(target))["image"]
    learned, judged = seen  # the supervised forward, then the target's for the entropy
    torch.testing.assert_close(learned, low_frequency_swap(source, target, 0.0))
    torch.testing.assert_close(learned.mean((0, 2, 3)), target.mean((0, 2, 3)))
    torch.testing.assert_close(judged, target)


def test_adaptation_terms_wait_for_adapt_start(tmp_path):
    trainer = make_trainer(tmp_path, max_epochs=1)
    trainer.fit(make_task("advent", adapt_start=100), train_dataloaders=pair_loaders())
    assert trainer.callback_metrics["train/adv_loss"] == 0.0  # the discriminator still learns
    assert "train/d_loss" in trainer.callback_metrics
    trainer = make_trainer(tmp_path, max_epochs=1)
    trainer.fit(make_task("dacs", adapt_start=100), train_dataloaders=pair_loaders())
    assert "train/mix_loss" not in trainer.callback_metrics


def test_methods_refuse_a_missing_or_needless_discriminator():
    optimizer = functools.partial(build_optimizer, optimizer="torch.optim.AdamW", lr=1e-2)
    common = dict(net=TinyNet(), loss=nn.CrossEntropyLoss(), optimizer=optimizer)
    with pytest.raises(ValueError, match=r"method=ADVENT: needs a discriminator"):
        DomainAdaptation(**common, method=ADVENT())
    with pytest.raises(ValueError, match=r"method=DACS: trains no discriminator"):
        DomainAdaptation(
            **common, method=DACS(), discriminator=ConfidenceDiscriminator(C), d_optimizer=optimizer
        )
    with pytest.raises(ValueError, match=r"method='dacs' is invalid: expected a segkit"):
        DomainAdaptation(**common, method="dacs")  # a name from before methods were objects
    with pytest.raises(ValueError, match=r"teacher_normalization='eval' is invalid"):
        DACS(teacher_normalization="eval")
    with pytest.raises(ValueError, match=r"adv_weight=-1 is invalid"):
        AdaptSegNet(adv_weight=-1)


def test_a_batch_without_a_target_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"domain pair data config"):
        make_trainer(tmp_path, max_epochs=1).fit(
            make_task("advent"), train_dataloaders=DataLoader(Scenes(4), batch_size=2)
        )


def synthetic(**kwargs) -> SyntheticDataModule:
    defaults = dict(image_size=32, train_size=8, val_size=4, test_size=4, batch_size=4)
    return SyntheticDataModule(**{**defaults, **kwargs})


NAMES = ["background", "disc", "triangle", "ring", "cross"]


def test_the_pair_trains_on_labeled_source_and_unlabeled_target_and_validates_on_both():
    pair = DomainPairDataModule(
        synthetic(),
        synthetic(seed=1, style={"hue_shift": 90.0}, unlabeled_true_masks=True),
        num_classes=5,
        class_names=NAMES,
        batch_size=2,
        num_workers=1,
    )
    pair.setup("fit")
    loaders = pair.train_dataloader()
    assert loaders["source"].num_workers == loaders["target"].num_workers == 1
    source, target = next(iter(loaders["source"])), next(iter(loaders["target"]))
    assert source["image"].shape == target["image"].shape == (2, 3, 32, 32)
    assert "mask" in source and "mask" not in target and "true_mask" in target
    target_val, source_val = pair.val_dataloader()
    assert next(iter(target_val))["name"][0] == pair.target.dataset("val").sample_name(0)
    assert next(iter(source_val))["name"][0] == pair.source.dataset("val").sample_name(0)
    assert pair.dataset("val") is pair.target.dataset("val") and pair.has_labeled_test


def test_label_spaces_must_agree_or_be_mapped():
    with pytest.raises(ValueError, match=r"differ from the target's 3"):
        check_label_spaces(["bg", "car", "road"], ["bg", "road", "car"], None)
    check_label_spaces(["bg", "car", "road"], ["bg", "road", "car"], {0: 0, 1: 2, 2: 1})
    with pytest.raises(ValueError, match=r"leaves source classes \[2\] unmapped"):
        check_label_spaces(["bg", "car", "road"], ["bg", "road"], {0: 0, 1: 255})
    with pytest.raises(ValueError, match=r"1 -> 5 is not a target class"):
        check_label_spaces(["bg", "car"], ["bg", "road"], {0: 0, 1: 5})
    with pytest.raises(ValueError, match=r"differ from the target's 4"):
        DomainPairDataModule(
            synthetic(),
            synthetic(num_classes=4),
            num_classes=4,
            class_names=NAMES[:4],
        )


def test_a_label_mapping_renames_source_classes():
    mapping = {0: 0, 1: 255, 2: 1, 3: 2, 4: 3}  # disc ignored, the rest shifted down
    pair = DomainPairDataModule(
        synthetic(),
        synthetic(num_classes=4, class_names=["background", "triangle", "ring", "cross"]),
        num_classes=4,
        class_names=["background", "triangle", "ring", "cross"],
        label_mapping=mapping,
    )
    pair.setup("fit")
    original = pair.source.dataset("train")[0]["mask"]
    mapped = pair.source_train()[0]["mask"]
    table = torch.tensor([mapping[i] for i in range(5)])
    assert torch.equal(mapped, table[original])
    source_val = pair.val_dataloader()[1].dataset[0]["mask"]
    assert set(source_val.unique().tolist()) <= {0, 1, 2, 3, 255}


def test_a_target_label_mapping_scores_the_target_in_the_pairs_fewer_classes():
    names = ["background", "triangle", "ring", "cross"]
    mapping = {0: 0, 1: 255, 2: 1, 3: 2, 4: 3}  # the target's discs are not scored
    table = torch.tensor([mapping[i] for i in range(5)] + [255] * 251)
    target = synthetic(seed=1, unlabeled_true_masks=True)
    pair = DomainPairDataModule(
        synthetic(num_classes=4, class_names=names),
        target,
        num_classes=4,
        class_names=names,
        target_label_mapping=mapping,
    )
    pair.setup("fit")
    pair.setup("test")
    original = target.dataset("val")[0]["mask"]
    assert (original == 1).any()  # a disc to hide
    for mapped in (
        pair.dataset("val")[0]["mask"],
        pair.val_dataloader()[0].dataset[0]["mask"],
    ):
        assert torch.equal(mapped, table[original])
    test_original = target.dataset("test")[0]["mask"]
    assert torch.equal(pair.test_dataloader().dataset[0]["mask"], table[test_original])
    true_mask = pair.train_dataloader()["target"].dataset[0]["true_mask"]
    assert set(true_mask.unique().tolist()) <= {0, 1, 2, 3, 255}
    with pytest.raises(ValueError, match=r"or data.target_label_mapping must map"):
        DomainPairDataModule(synthetic(num_classes=4, class_names=names), synthetic(), 4, names)
    with pytest.raises(ValueError, match=r"data.target_label_mapping leaves target classes \[4\]"):
        DomainPairDataModule(
            synthetic(num_classes=4, class_names=names),
            synthetic(),
            4,
            names,
            target_label_mapping={0: 0, 1: 255, 2: 1, 3: 2},
        )


def test_domain_pairs_and_models_must_match_before_training(compose_train):
    check_train_config(compose_train("model=adapt", "data=synthetic_shift"))
    for name, method in METHODS.items():
        cfg = compose_train("model=adapt", f"model/method={name}", "data=synthetic_shift")
        check_train_config(cfg)
        assert instantiate(cfg.model.method).__class__ is method  # the preset builds its object
    with pytest.raises(ConfigError, match=r"train it with model=adapt"):
        check_train_config(compose_train("model=unet", "data=synthetic_shift"))
    with pytest.raises(ConfigError, match=r"choose a domain pair data config"):
        check_train_config(compose_train("model=adapt"))
    cfg = compose_train(
        "model=adapt",
        "data=synthetic_shift",
        "data.target.num_classes=4",
        "data.target.class_names=[background,disc,triangle,ring]",
        "data.target.palette=[[0,0,0],[1,1,1],[2,2,2],[3,3,3]]",
    )
    with pytest.raises(ConfigError, match=r"differ from the target's 4"):
        check_train_config(cfg)
    cfg.data.target_label_mapping = {0: 0, 1: 1, 2: 2, 3: 3}  # the pair's classes: the target's
    with pytest.raises(ConfigError, match=r"source's 5 classes .* differ from the pair's 4"):
        check_train_config(cfg)
    cfg.data.target_label_mapping = {0: 0, 1: 1, 2: 2, 3: 9}
    for key in ("class_names", "palette", "num_classes"):  # the pair's: the source's 5
        cfg.data[key] = cfg.data.source[key]
    with pytest.raises(ConfigError, match=r"target_label_mapping: 3 -> 9 is not a pair class"):
        check_train_config(cfg)
    cfg.data.target_label_mapping[3] = 3
    check_train_config(cfg)  # the target's 4 classes scored in the pair's (the source's) 5
    with pytest.raises(ConfigError, match=r"ADVENT needs a discriminator.*model/method=advent"):
        check_train_config(
            compose_train("model=adapt", "data=synthetic_shift", "model.discriminator=null")
        )
    with pytest.raises(ConfigError, match=r"model.method='dacs' is invalid: expected a method"):
        check_train_config(
            compose_train("model=adapt", "data=synthetic_shift", "model.method=dacs")
        )


def test_a_style_changes_the_look_of_a_scene_not_its_layout():
    plain = render_scene(SceneSpec(height=48, width=48), 3, 5)
    restyled = render_scene(
        SceneSpec(height=48, width=48, style=SceneStyle(hue_shift=90, brightness=0.6, blur=1.0)),
        3,
        5,
    )
    assert np.array_equal(plain.mask, restyled.mask)
    assert np.abs(plain.image.astype(float) - restyled.image).mean() > 10
    assert restyled.image.mean() < plain.image.mean()  # dimmer lighting
    default = render_scene(SceneSpec(height=48, width=48, style=SceneStyle()), 3, 5)
    assert np.array_equal(default.image, plain.image)  # the default style is the old look
    smaller = [
        (render_scene(SceneSpec(style=SceneStyle(object_scale=s)), 0, i).mask > 0).sum()
        for s in (1.0, 0.6)
        for i in range(8)
    ]
    assert sum(smaller[8:]) < 0.6 * sum(smaller[:8])


def test_style_keys_are_checked():
    with pytest.raises(ValueError, match=r"data.style has unknown keys \['hue'\]"):
        synthetic(style={"hue": 30})
    with pytest.raises(ValueError, match=r"style.brightness=0.0 is invalid"):
        synthetic(style={"brightness": 0.0})


def test_testing_reads_the_target_alone():
    class NoTest(SyntheticDataModule):
        def build_dataset(self, split: str):
            if split == "test":
                raise AssertionError("the source's test split was read")
            return super().build_dataset(split)

    pair = DomainPairDataModule(
        NoTest(image_size=32, train_size=8, val_size=4, batch_size=2),
        synthetic(seed=1),
        num_classes=5,
        class_names=NAMES,
    )
    pair.setup("test")
    batch = next(iter(pair.test_dataloader()))
    assert batch["name"][0] == pair.target.dataset("test").sample_name(0)
