"""Optional dependencies live in extras (`segkit[export]`, `segkit[tensorboard]`); without
them the command that needs one stops at once with one line naming the extra."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def without(tmp_path: Path, *modules: str) -> dict[str, str]:
    """An environment in which importing `modules` fails, as when they are not installed."""
    shadow = tmp_path / "shadow"
    for module in modules:
        (shadow / module).mkdir(parents=True)
        (shadow / module / "__init__.py").write_text("raise ImportError('not installed')\n")
    return {**os.environ, "PYTHONPATH": str(shadow)}


def run(module: str, *args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def test_onnx_export_without_the_export_extra_names_it(tmp_path):
    env = without(tmp_path, "onnxscript", "onnxruntime")
    proc = run("segkit.export", "ckpt_path=run/best.ckpt", "format=onnx", env=env, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "segkit: segkit.export format=onnx needs onnxscript, onnxruntime (not installed): "
        "pip install 'segkit[export]'"
    ]


def test_tensorboard_logger_without_the_tensorboard_extra_names_it(tmp_path):
    env = without(tmp_path, "tensorboardX", "tensorboard")
    proc = run("segkit.train", "logger=tensorboard", f"hydra.run.dir={tmp_path / 'r'}", env=env,
               cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "segkit: config error: logger=tensorboard needs tensorboardX (not installed): "
        "pip install 'segkit[tensorboard]'"
    ]
    assert not (tmp_path / "r" / "checkpoints").exists()  # stopped before training
