"""Reading checkpoints: clear errors for files segkit cannot or will not use."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from segkit.run.checkpoints import CheckpointError, check_classes, load_checkpoint


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_checkpoint(tmp_path / "none.ckpt")


def test_truncated_file(tmp_path):
    path = tmp_path / "cut.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1000)}, "segkit_config": {}}, path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match=r"cut\.ckpt: not a readable PyTorch checkpoint"):
        load_checkpoint(path)


def test_plain_state_dict_is_not_a_segkit_checkpoint(tmp_path):
    path = tmp_path / "weights.pth"
    torch.save({"conv.weight": torch.zeros(1)}, path)
    with pytest.raises(CheckpointError, match="not a segkit checkpoint"):
        load_checkpoint(path)


def config(target: str, task: str = "semantic", classes: int = 5):
    return OmegaConf.create(
        {"model": {"_target_": target}, "data": {"num_classes": classes, "task": task}}
    )


def test_model_family_and_class_count_must_match_the_data():
    semantic = config("segkit.tasks.semantic.SemanticSegmentation")
    check_classes(semantic, semantic.data, "a.ckpt")
    with pytest.raises(CheckpointError, match="a semantic model cannot be evaluated on instance"):
        check_classes(semantic, config("x", task="instance").data, "a.ckpt")
    instance = config("segkit.tasks.instance.InstanceSegmentation", task="instance")
    with pytest.raises(CheckpointError, match=r"an instance model cannot be evaluated on semantic"):
        check_classes(instance, semantic.data, "b.ckpt")
    with pytest.raises(CheckpointError, match=r"predicts 5 classes .* the data has 19"):
        check_classes(semantic, config("x", classes=19).data, "c.ckpt")
