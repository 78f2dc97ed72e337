"""Where a run came from: ``provenance.json`` in every run dir, and the same record in each of
its checkpoints (``ckpt["segkit_provenance"]``).

The record: segkit's version (from the installed package's metadata, the one source of the
version), the git commit and whether the checkout had uncommitted changes (when segkit runs
from a git checkout), the versions of Python and the libraries that decide the numbers, the
device, the resolved precision and the command line.
"""

from __future__ import annotations

import json
import platform
import shlex
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

#: Distributions whose versions a run records (name in the record -> distribution name).
LIBRARIES = {
    "torch": "torch",
    "torchvision": "torchvision",
    "lightning": "lightning",
    "segmentation_models_pytorch": "segmentation-models-pytorch",
    "albumentations": "albumentations",
    "hydra": "hydra-core",
}


def package_version(distribution: str = "segkit") -> str | None:
    """The installed version of `distribution` (None when it is not installed)."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def git_state(directory: Path) -> dict[str, Any]:
    """``{"sha": commit, "dirty": bool}`` of the git checkout holding `directory`, or
    ``{"sha": None, "dirty": None}`` outside one (an installed wheel) or without git."""

    def git(*args: str) -> str:
        out = subprocess.run(
            ["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=10
        )
        if out.returncode:
            raise OSError(out.stderr.strip())
        return out.stdout.strip()

    try:
        sha = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {"sha": None, "dirty": None}
    return {"sha": sha, "dirty": dirty}


def device_name(accelerator: str = "auto") -> str:
    """The GPU's name on CUDA, else the CPU's model name."""
    from segkit.run.precision import device_type

    if device_type(accelerator) == "cuda":
        import torch

        return torch.cuda.get_device_name()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def provenance(
    precision: str | int, accelerator: str = "auto", argv: Sequence[str] | None = None
) -> dict[str, Any]:
    """The provenance record of a run on this machine with the resolved `precision`."""
    if argv is None:
        argv = list(sys.argv)
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        if spec is not None and spec.name:  # python -m <module> (also `segkit <command>`)
            argv = ["python", "-m", spec.name.removesuffix(".__main__"), *argv[1:]]
    package_dir = Path(__file__).resolve().parents[1]
    return {
        "segkit": package_version(),
        "git": git_state(package_dir),
        "python": platform.python_version(),
        **{name: package_version(dist) for name, dist in LIBRARIES.items()},
        "device": device_name(accelerator),
        "precision": str(precision),
        "command": shlex.join(argv),
    }


def write_provenance(record: dict[str, Any], run_dir: Path) -> Path:
    path = run_dir / "provenance.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path
