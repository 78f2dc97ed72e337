"""Weights from local files (encoder or whole network, with a key report) and from the local
caches only: a missing cache entry fails at once with a message saying where to put it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import segmentation_models_pytorch as smp
import torch
import torchvision
from safetensors.torch import save_file

from segkit.models.pretrained import load_pretrained, read_state_dict
from segkit.models.torchvision_segmenter import TorchvisionSegmenter
from segkit.models.weights_cache import (
    WeightsNotCachedError,
    require_smp_encoder_weights,
    require_torchvision_weights,
)


def unet(classes=5, seed=0):
    torch.manual_seed(seed)
    return smp.Unet(
        "resnet18", encoder_weights=None, classes=classes, decoder_channels=(32, 16, 8, 8, 8)
    )


def test_imagenet_backbone_file_loads_into_the_encoder(tmp_path):
    backbone = torchvision.models.resnet18()  # what a downloaded ImageNet .pth holds
    path = tmp_path / "resnet18.pth"
    torch.save(backbone.state_dict(), path)
    net = unet()
    report = load_pretrained(net, path)
    assert report.target == "encoder"
    assert sorted(report.unexpected) == ["fc.bias", "fc.weight"]
    assert report.missing == [] and report.mismatched == []
    assert len(report.loaded) == len(net.encoder.state_dict())
    torch.testing.assert_close(net.encoder.conv1.weight, backbone.conv1.weight)
    assert "2 unexpected (in the file only, ignored): fc.weight, fc.bias" in report.summary()


def test_checkpoint_for_other_classes_keeps_everything_but_the_head(tmp_path):
    source = unet(classes=19, seed=1)
    path = tmp_path / "city.safetensors"
    save_file(source.state_dict(), str(path))
    net = unet(classes=5, seed=2)
    head_before = net.segmentation_head[0].weight.clone()
    report = load_pretrained(net, path)
    assert report.target == "net"
    mismatched = sorted(report.mismatched)
    assert [m.split()[0] for m in mismatched] == [
        "segmentation_head.0.bias",
        "segmentation_head.0.weight",
    ]
    assert mismatched[1].endswith("[19, 8, 3, 3] (model [5, 8, 3, 3])")
    torch.testing.assert_close(net.decoder.state_dict(), source.decoder.state_dict())
    torch.testing.assert_close(net.segmentation_head[0].weight, head_before)  # re-initialised
    with pytest.raises(ValueError, match=r"(?s)strict loading failed:\n.*2 shape mismatch"):
        load_pretrained(unet(classes=5), path, strict=True)


def test_lightning_checkpoint_loads_into_the_encoder_only(tmp_path):
    source = unet(seed=1)
    ckpt = {"state_dict": {f"net.{k}": v for k, v in source.state_dict().items()}, "epoch": 3}
    path = tmp_path / "best.ckpt"
    torch.save(ckpt, path)
    net = unet(seed=2)
    decoder_before = {k: v.clone() for k, v in net.decoder.state_dict().items()}
    report = load_pretrained(net, path, target="encoder", strict=True)
    assert report.target == "encoder" and not report.unexpected
    torch.testing.assert_close(net.encoder.state_dict(), source.encoder.state_dict())
    torch.testing.assert_close(net.decoder.state_dict(), decoder_before)


def test_torchvision_segmenter_backbone_has_an_encoder_prefix(tmp_path):
    source = torchvision.models.resnet50()
    path = tmp_path / "r50.pth"
    torch.save({"model": source.state_dict()}, path)  # torchvision references' layout
    net = TorchvisionSegmenter("fcn_resnet50", num_classes=3)
    report = load_pretrained(net, path)
    assert report.target == "encoder" and len(report.loaded) == len(net.encoder.state_dict())
    torch.testing.assert_close(net.encoder.layer4[0].conv1.weight, source.layer4[0].conv1.weight)


def test_bad_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path}/nope.pth does not exist"):
        read_state_dict(tmp_path / "nope.pth")
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=f"{corrupt}: not a PyTorch weights file: torch.save"):
        read_state_dict(corrupt)
    unrelated = tmp_path / "unrelated.pth"
    torch.save({"foo.weight": torch.zeros(3)}, unrelated)
    with pytest.raises(ValueError, match=r"no tensor in .*unrelated\.pth matches the net"):
        load_pretrained(unet(), unrelated)


def test_missing_torchvision_weights_fail_with_the_cache_path(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsNotCachedError) as err:
        TorchvisionSegmenter("fcn_resnet50", num_classes=3, weights_backbone="IMAGENET1K_V1")
    message = str(err.value)
    assert f"expected {tmp_path}/hub/checkpoints/resnet50-" in message
    assert "https://download.pytorch.org/models/resnet50-" in message
    with pytest.raises(ValueError, match="has no weights 'IMAGENET9'"):
        require_torchvision_weights("resnet50", "IMAGENET9")


def fake_hf_cache(hf_home, encoder_state):
    """The Hugging Face cache layout smp reads smp-hub/resnet18.imagenet from."""
    from segmentation_models_pytorch.encoders import encoders

    settings = encoders["resnet18"]["pretrained_settings"]["imagenet"]
    repo = settings["repo_id"].replace("/", "--")
    snapshot = hf_home / "hub" / f"models--{repo}" / "snapshots" / settings["revision"]
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps({"mean": [0.5] * 3, "std": [0.2] * 3}))
    save_file(encoder_state, str(snapshot / "model.safetensors"))


def test_cached_imagenet_weights_load_offline(tmp_path):
    encoder_state = {
        k: torch.randn_like(v) if v.is_floating_point() else v
        for k, v in unet().encoder.state_dict().items()
    }
    fake_hf_cache(tmp_path, encoder_state)
    torch.save(encoder_state, tmp_path / "expected.pt")
    script = f"""
import torch, segmentation_models_pytorch as smp
from segkit.models.weights_cache import require_smp_encoder_weights
require_smp_encoder_weights("resnet18", "imagenet")
net = smp.Unet("resnet18", encoder_weights="imagenet", classes=2)
expected = torch.load({str(tmp_path / "expected.pt")!r})
torch.testing.assert_close(net.encoder.state_dict(), expected)
print("loaded from cache")
"""
    env = {**os.environ, "HF_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "loaded from cache" in proc.stdout


def test_uncached_imagenet_weights_fail_at_once_from_the_cli(tmp_path):
    env = {**os.environ, "HF_HOME": str(tmp_path / "empty")}
    env.pop("HF_HUB_OFFLINE", None)  # segkit sets it itself
    start = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "segkit.train",
            "model.net.encoder_weights=imagenet",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.perf_counter() - start
    assert proc.returncode == 2
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("segkit: config error:")]
    assert "model.net.encoder_weights=imagenet: resnet18 'imagenet' weights are not in" in line
    assert "hf download smp-hub/resnet18.imagenet" in line
    assert "model.pretrained=/path/to/weights" in line
    assert elapsed < 10, f"took {elapsed:.1f} s"
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_unknown_smp_weights_echo_the_name(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    # Nothing cached: the fast answer (no smp import) repeats the value given.
    with pytest.raises(WeightsNotCachedError, match="resnet18 'instagram' weights are not in"):
        require_smp_encoder_weights("resnet18", "instagram")
    # Something cached under that name: smp's table is read and the real choices listed.
    (tmp_path / "models--smp-hub--resnet18.instagram").mkdir()
    with pytest.raises(
        ValueError, match="resnet18 has no weights 'instagram'; available: imagenet"
    ):
        require_smp_encoder_weights("resnet18", "instagram")


def test_partial_cache_names_the_revision_smp_pins(tmp_path, monkeypatch):
    import huggingface_hub.constants
    from segmentation_models_pytorch.encoders import encoders

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    (tmp_path / "models--smp-hub--resnet18.imagenet" / "snapshots" / "other").mkdir(parents=True)
    revision = encoders["resnet18"]["pretrained_settings"]["imagenet"]["revision"]
    with pytest.raises(
        WeightsNotCachedError, match=f"hf download smp-hub/resnet18.imagenet --revision {revision}"
    ):
        require_smp_encoder_weights("resnet18", "imagenet")
