"""Every model config builds a network that trains on a 64x64 batch, whatever its family."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from segkit.models.input_size import check_input_size, input_size_divisor
from segkit.models.torchvision_segmenter import TorchvisionSegmenter
from segkit.run.build import task_config
from segkit.run.compose import CONF_DIR

# Semantic models; Mask R-CNN and adversarial configs have their own tests (test_instance_task,
# test_adversarial_configs, test_configs).
MODELS = sorted(
    p.stem
    for p in (Path(CONF_DIR) / "model").glob("*.yaml")
    if "tasks.semantic.SemanticSegmentation" in p.read_text()
)
WITH_AUX = {"fcn", "deeplabv3_tv"}


def build_task(compose_train, *overrides):
    cfg = compose_train(*overrides)
    return cfg, instantiate(
        task_config(cfg.model),
        _convert_="all",
        loss=instantiate(cfg.loss, _convert_="all"),
        optimizer=instantiate(cfg.optimizer),
    )


@pytest.mark.parametrize("model", MODELS)
def test_model_trains_on_a_64px_batch(compose_train, model):
    cfg, task = build_task(compose_train, f"model={model}")
    images = torch.randn(2, 3, 64, 64)
    mask = torch.randint(0, cfg.data.num_classes, (2, 64, 64))
    mask[:, :4] = cfg.data.ignore_index

    task.train()
    torch.manual_seed(1)  # the same dropout masks in both forward passes
    out = task.net(images)
    if model in WITH_AUX:
        assert set(out) == {"out", "aux"}
        assert out["aux"].shape == (2, cfg.data.num_classes, 64, 64)
    logged = {}
    task.log = lambda name, value, **k: logged.update({name: float(value.detach())})
    task.log_dict = lambda values, **k: logged.update(
        {n: float(v.detach()) for n, v in values.items()}
    )
    torch.manual_seed(1)
    loss = task.training_step({"image": images, "mask": mask}, 0)
    assert torch.isfinite(loss) and loss.item() > 0
    if model in WITH_AUX:  # the auxiliary head's loss counts with weight 0.5
        main = task.loss(out["out"], mask).item()
        assert logged["train/loss/aux"] == pytest.approx(task.loss(out["aux"], mask).item())
        assert logged["train/loss"] == pytest.approx(main + 0.5 * logged["train/loss/aux"])
    loss.backward()
    grads = [p.grad for p in task.net.parameters() if p.grad is not None]
    # (smp's PSPNet uses 3 encoder stages and leaves the others without gradients.)
    assert len(grads) > 10 and all(torch.isfinite(g).all() for g in grads)
    last_layer = list(task.net.parameters())[-1]
    assert last_layer.grad is not None and last_layer.grad.abs().sum() > 0

    task.eval()
    with torch.no_grad():
        logits = task.net(images)  # eval: a plain tensor, auxiliary head dropped
    assert isinstance(logits, torch.Tensor)
    assert logits.shape == (2, cfg.data.num_classes, 64, 64)


@pytest.mark.parametrize("model", ["unet", "deeplabv3plus", "fcn", "lraspp"])
@pytest.mark.parametrize("in_channels", [1, 5])
def test_in_channels_follow_the_data(compose_train, model, in_channels):
    cfg, task = build_task(compose_train, f"model={model}", f"data.in_channels={in_channels}")
    dm = instantiate(cfg.data, train_size=2)
    batch = next(iter(torch.utils.data.DataLoader(dm.dataset("train"), batch_size=2)))
    assert batch["image"].shape == (2, in_channels, 64, 64)
    assert task.eval()(batch["image"]).shape == (2, cfg.data.num_classes, 64, 64)


@pytest.mark.parametrize(
    ("model", "divisor"),
    [
        ("unet", 1),
        ("unetplusplus", 32),
        ("fpn", 32),
        ("pspnet", 8),
        ("deeplabv3", 8),
        ("deeplabv3plus", 16),
        ("segformer", 32),
        ("fcn", 1),
        ("lraspp", 1),
    ],
)
def test_input_size_divisor_matches_what_the_network_accepts(compose_train, model, divisor):
    _, task = build_task(compose_train, f"model={model}")
    net = task.net.eval()
    assert input_size_divisor(net) == divisor
    with torch.no_grad():
        net(torch.zeros(1, 3, 64 + divisor, 64 + divisor))  # a valid size runs
        if divisor > 1:
            with pytest.raises(RuntimeError):
                net(torch.zeros(1, 3, 64 + divisor // 2, 64))  # the network itself refuses
            with pytest.raises(ValueError, match=f"multiples of {divisor}"):
                check_input_size(net, [64 + divisor // 2], "data.image_size")


def test_divisibility_error_names_size_and_nearest_valid_sizes(compose_train):
    _, task = build_task(compose_train, "model=deeplabv3plus")
    with pytest.raises(ValueError) as err:
        check_input_size(task.net, [64, 100], "data.image_size")
    assert str(err.value) == (
        "data.image_size=100 is not accepted by DeepLabV3Plus: height and width must be "
        "multiples of 16 (its encoder's output stride); nearest valid sizes: 96, 112"
    )


def test_torchvision_whole_model_weights_get_new_class_layers(tmp_path, monkeypatch):
    """COCO/VOC weights (21 classes) fine-tune on 5 classes: everything but the class layers
    is loaded; read from the torch hub cache, never downloaded."""
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    weights = torchvision.models.get_model_weights("lraspp_mobilenet_v3_large").DEFAULT
    source = torchvision.models.get_model(
        "lraspp_mobilenet_v3_large", weights_backbone=None, num_classes=21
    )
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(source.state_dict(), cache / Path(weights.url).name)

    net = TorchvisionSegmenter("lraspp_mobilenet_v3_large", num_classes=5, weights="DEFAULT")
    own = net.model.state_dict()
    for key, value in source.state_dict().items():
        if "low_classifier" in key or "high_classifier" in key:
            assert own[key].shape[0] == 5
        else:
            torch.testing.assert_close(own[key], value)


@pytest.mark.parametrize("encoder", ["resnet34", "efficientnet-b0", "tu-mobilenetv3_small_100"])
def test_any_smp_or_timm_encoder_plugs_in(compose_train, encoder):
    cfg, task = build_task(compose_train, "model=fpn", f"model.net.encoder_name={encoder}")
    with torch.no_grad():
        logits = task.eval()(torch.randn(1, 3, 64, 64))
    assert logits.shape == (1, cfg.data.num_classes, 64, 64)
