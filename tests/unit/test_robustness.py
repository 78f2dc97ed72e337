"""Malformed inputs across images, masks, COCO JSON, configs, checkpoints and run dirs: each
gives its expected clear error (naming the file or key) or is skipped, never a hang, a bare
library traceback or a silent wrong result. docs/reliability.md lists the promises."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from segkit.data.bad_samples import BadSampleError
from segkit.data.coco import CocoInstances
from segkit.run.checkpoints import CONFIG_KEY, CheckpointError, load_checkpoint
from segkit.run.config_checks import ConfigError, check_train_config
from segkit.run.resume import ResumeError, check_run_dir, resume_argv
from tests.unit.test_folder import module, write_folder


def folder_sample(root: Path, break_it: Callable[[Path], None]):
    """Reads the training sample "b" of a 3-image folder dataset after `break_it(root)`."""
    write_folder(root, ["a", "b", "c"], subfolder="train")
    write_folder(root, ["v"], subfolder="val")
    break_it(root)
    dm = module(root)
    return lambda: dm.dataset("train")[1]


def image_b(root: Path) -> Path:
    return root / "images" / "train" / "b.jpg"


def mask_b(root: Path) -> Path:
    return root / "masks" / "train" / "b.png"


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def save_mask(path: Path, array: np.ndarray) -> None:
    Image.fromarray(array).save(path)


# (case id, builder(tmp_path, compose) -> callable, expected exception, message regex)
CASES: list[tuple[str, Callable, type[BaseException], str]] = []


def case(name: str, error: type[BaseException], message: str):
    def register(builder: Callable) -> Callable:
        CASES.append((name, builder, error, message))
        return builder

    return register


# --- images and masks (folder layout; every file-based dataset reads through read_pair) ---
@case("truncated image", BadSampleError, r"cannot read .*images/train/b\.jpg \(sample 1\)")
def _(tmp, compose):
    return folder_sample(tmp, lambda r: truncate(image_b(r)))


@case("zero-byte image", BadSampleError, r"cannot read .*images/train/b\.jpg")
def _(tmp, compose):
    return folder_sample(tmp, lambda r: image_b(r).write_bytes(b""))


@case("text file named .jpg", BadSampleError, r"cannot identify image file .*b\.jpg")
def _(tmp, compose):
    return folder_sample(tmp, lambda r: image_b(r).write_text("not an image"))


@case("truncated mask", BadSampleError, r"cannot read .*masks/train/b\.png")
def _(tmp, compose):
    return folder_sample(tmp, lambda r: truncate(mask_b(r)))


@case("mask of another size", BadSampleError, r"masks/train/b\.png is 20x10 but its image")
def _(tmp, compose):
    return folder_sample(tmp, lambda r: save_mask(mask_b(r), np.zeros((10, 20), np.uint8)))


@case("unknown label value", BadSampleError, r"b\.png holds label values \[7\] that are not")
def _(tmp, compose):
    return folder_sample(tmp, lambda r: save_mask(mask_b(r), np.full((32, 40), 7, np.uint8)))


@case("mask without its image", FileNotFoundError, r"b")
def _(tmp, compose):
    return folder_sample(tmp, lambda r: image_b(r).unlink())


@case("missing data root", (FileNotFoundError, ValueError), r"nowhere")
def _(tmp, compose):
    return lambda: module(tmp / "nowhere").dataset("train")


# --- COCO instances JSON ---
def coco_file(tmp: Path, content) -> Callable:
    (tmp / "images").mkdir()
    Image.new("RGB", (8, 6)).save(tmp / "images" / "x.jpg")
    path = tmp / "instances.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return lambda: CocoInstances(tmp / "images", path)


GOOD_COCO = {
    "images": [{"id": 1, "file_name": "x.jpg", "height": 6, "width": 8}],
    "annotations": [
        {
            "id": 1,
            "image_id": 1,
            "category_id": 3,
            "bbox": [0, 0, 2, 2],
            "area": 4,
            "segmentation": [[0, 0, 2, 0, 2, 2]],
            "iscrowd": 0,
        }
    ],
    "categories": [{"id": 3, "name": "car"}],
}


@case("COCO file missing", FileNotFoundError, r"COCO annotation file .*nothere\.json")
def _(tmp, compose):
    return lambda: CocoInstances(tmp, tmp / "nothere.json")


@case("COCO file not JSON", ValueError, r"instances\.json is not a COCO instances file")
def _(tmp, compose):
    return coco_file(tmp, "{ not json")


@case("COCO file without images", ValueError, r"instances\.json is not a COCO instances file")
def _(tmp, compose):
    return coco_file(tmp, {"annotations": [], "categories": []})


@case("COCO unknown category", ValueError, r"annotation 1 has category_id 9, which is not")
def _(tmp, compose):
    bad = json.loads(json.dumps(GOOD_COCO))
    bad["annotations"][0]["category_id"] = 9
    return coco_file(tmp, bad)


@case("COCO image missing on disk", FileNotFoundError, r"1 images listed in .* first: .*y\.jpg")
def _(tmp, compose):
    bad = json.loads(json.dumps(GOOD_COCO))
    bad["images"][0]["file_name"] = "y.jpg"
    return coco_file(tmp, bad)


@case("COCO image of another size", ValueError, r"x\.jpg is 8x6 but .* says 9x6")
def _(tmp, compose):
    bad = json.loads(json.dumps(GOOD_COCO))
    bad["images"][0]["width"] = 9
    return lambda: coco_file(tmp, bad)()[0]


# --- configs ---
def config_error(*overrides: str):
    return lambda tmp, compose: lambda: check_train_config(compose(*overrides))


for _name, _overrides, _message in [
    (
        "class count differs from the data's",
        ["model.net.classes=7"],
        r"model.net.classes=7 differs from the data's 5",
    ),
    ("class names and count disagree", ["data.num_classes=3"], r"data.class_names has 5 entries"),
    (
        "zero training batches",
        ["trainer.limit_train_batches=0"],
        r"trainer.limit_train_batches=0 with a learning-rate schedule: it needs at least one",
    ),
    (
        "bad on_nonfinite",
        ["trainer.on_nonfinite=ignore"],
        r"trainer.on_nonfinite='ignore' is invalid",
    ),
    ("bad W&B mode", ["logger.wandb.mode=cloud"], r"logger.wandb.mode='cloud' is invalid"),
    (
        "semantic model on instance samples",
        ["data.task=instance"],
        r"data.task=instance gives instance samples",
    ),
]:
    case(_name, ConfigError, _message)(config_error(*_overrides))


@case("unknown model option", ConfigCompositionException, r"model.*nosuchnet")
def _(tmp, compose):
    return lambda: compose("model=nosuchnet")


@case("instance model on a semantic-only dataset", Exception, r"VOCDataModule gives semantic")
def _(tmp, compose):
    cfg = compose("model=maskrcnn", "data=voc", f"data.root={tmp}")
    return lambda: instantiate(cfg.data, _convert_="all")


# --- checkpoints ---
@case("checkpoint missing", CheckpointError, r"nothere\.ckpt: no such checkpoint file")
def _(tmp, compose):
    return lambda: load_checkpoint(tmp / "nothere.ckpt")


@case("checkpoint truncated", CheckpointError, r"cut\.ckpt: not a readable PyTorch checkpoint")
def _(tmp, compose):
    torch.save({"state_dict": {"w": torch.zeros(1000)}, CONFIG_KEY: {}}, tmp / "cut.ckpt")
    truncate(tmp / "cut.ckpt")
    return lambda: load_checkpoint(tmp / "cut.ckpt")


@case("checkpoint of plain Lightning", CheckpointError, r"not a segkit checkpoint")
def _(tmp, compose):
    torch.save({"state_dict": {}, "epoch": 1}, tmp / "plain.ckpt")
    return lambda: load_checkpoint(tmp / "plain.ckpt")


@case("checkpoint with pickled objects", CheckpointError, r"refused: it holds pickled")
def _(tmp, compose):
    torch.save({"state_dict": {}, CONFIG_KEY: {}, "obj": Path("x")}, tmp / "unsafe.ckpt")
    return lambda: load_checkpoint(tmp / "unsafe.ckpt")


@case("text file as checkpoint", CheckpointError, r"notes\.ckpt: not a PyTorch checkpoint: torch")
def _(tmp, compose):
    (tmp / "notes.ckpt").write_text("hello")
    return lambda: load_checkpoint(tmp / "notes.ckpt")


# --- run dirs ---
@case("resume a dir that is no run", ResumeError, r"resume=.*: not a segkit run dir")
def _(tmp, compose):
    return lambda: resume_argv(["train.py", f"resume={tmp}"])


@case("resume a run without checkpoint", ResumeError, r"no checkpoints/last\.ckpt in it")
def _(tmp, compose):
    (tmp / ".hydra").mkdir()
    (tmp / ".hydra" / "overrides.yaml").write_text("- seed=1\n")
    return lambda: resume_argv(["train.py", f"resume={tmp}"])


@case("resume inside a multirun", ResumeError, r"cannot be combined with -m")
def _(tmp, compose):
    return lambda: resume_argv(["train.py", "-m", f"resume={tmp}"])


@case("new run in a used run dir", ResumeError, r"already holds a run: continue it with resume=")
def _(tmp, compose):
    (tmp / "checkpoints").mkdir()
    (tmp / "checkpoints" / "last.ckpt").write_bytes(b"")
    return lambda: check_run_dir(["train.py", f"hydra.run.dir={tmp}"])


def test_the_table_is_broad():
    assert len(CASES) >= 20


@pytest.mark.timeout(60)  # never a hang
@pytest.mark.parametrize(("name", "builder", "error", "message"), CASES, ids=[c[0] for c in CASES])
def test_malformed_input_gives_its_clear_error(
    tmp_path, compose_train, name, builder, error, message
):
    attempt = builder(tmp_path, compose_train)
    with pytest.raises(error, match=message):
        attempt()


def test_resume_rebuilds_the_runs_command_line(tmp_path):
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "overrides.yaml").write_text(
        "- model=fcn\n- seed=3\n- trainer.max_epochs=2\n- hydra.run.dir=old\n"
    )
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"")
    argv = resume_argv(["train.py", f"resume={tmp_path}", "trainer.max_epochs=5"])
    assert argv == [
        "train.py",
        "model=fcn",
        "seed=3",
        "trainer.max_epochs=5",  # the new value wins, the old one is dropped
        f"hydra.run.dir={tmp_path}",
        f"ckpt_path={tmp_path / 'checkpoints' / 'last.ckpt'}",
    ]
    assert resume_argv(["train.py", "seed=1"]) == ["train.py", "seed=1"]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    values=st.lists(st.sampled_from([0, 1, 2, 3, 7, 200, 254, 255]), min_size=1, max_size=6),
    height=st.sampled_from([32, 31, 8]),
    width=st.sampled_from([40, 41, 8]),
)
def test_random_mask_values_and_sizes_are_read_exactly_or_refused_by_name(
    tmp_path_factory, values, height, width
):
    root = tmp_path_factory.mktemp("masks")
    write_folder(root, ["a"], subfolder="train")
    write_folder(root, ["v"], subfolder="val")
    mask = np.resize(np.array(values, np.uint8), (height, width))
    save_mask(root / "masks" / "train" / "a.png", mask)
    valid = (height, width) == (32, 40) and all(v < 3 or v == 255 for v in values)
    read = lambda: module(root).dataset("train")[0]  # noqa: E731
    if valid:
        np.testing.assert_array_equal(read()["mask"].numpy(), mask)  # exactly what the file says
    else:
        with pytest.raises(BadSampleError, match=r"masks/train/a\.png"):
            read()
