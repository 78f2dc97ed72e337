"""`make gpu-wheels`: the wheels the GPU machine lacks, for its Python 3.12 (manylinux x86-64).

That machine has no network. It already has torch, torchvision, lightning, torchmetrics, timm
(with huggingface-hub and safetensors), onnx, onnxruntime, opencv and matplotlib. The check
(`experiments/gpu/check.py`) also needs what `DISTRIBUTIONS` lists; each is pinned to the
version installed here, so the GPU machine runs the code the CPU suite tests. W&B is left out
(its wheel and dependencies are about 25 MB, and the check logs to CSV); the CPU suite tests
the W&B logger.

    python experiments/gpu/wheels.py [--dest experiments/gpu/wheels]

Then, there: ``pip install --no-index --no-deps --target .gpu-deps experiments/gpu/wheels/*``
(`make gpu-check` does it).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

#: Distributions the check imports that the GPU machine lacks (with their own dependencies).
DISTRIBUTIONS = (
    "hydra-core",
    "omegaconf",
    "antlr4-python3-runtime",  # omegaconf's parser (sdist only: built into a wheel here)
    "segmentation-models-pytorch",
    "albumentations",
    "albucore",
    "stringzilla",
    "simsimd",
    "scipy",
    "pydantic",
    "pydantic-core",
    "annotated-types",
    "typing-inspection",
    "pycocotools",
    "tifffile",  # segkit.data.image_reader (multi-band and 16-bit TIFFs)
    "onnxscript",
    "onnx-ir",
    "tensorboardX",
    "typing-extensions",  # pydantic needs a recent one; installed only over an older one
)
#: Built here from the source distribution (pure Python, no binary wheel published).
BUILT_HERE = ("antlr4-python3-runtime",)
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
LIMIT_MIB = 60


def download(dest: Path) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("*.whl"):
        old.unlink()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    for name in DISTRIBUTIONS:
        spec = f"{name}=={version(name)}"
        if name in BUILT_HERE:
            subprocess.run([*pip, "wheel", "--no-deps", "-w", str(dest), spec], check=True)
            continue
        platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
        subprocess.run(
            [*pip, "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
             "--implementation", "cp", "--abi", "cp312", "--abi", "abi3", "--abi", "none",
             *platforms, "--platform", "any", "-d", str(dest), spec],
            check=True,
        )  # fmt: skip
    return sorted(dest.glob("*.whl"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", type=Path, default=Path(__file__).parent / "wheels")
    args = parser.parse_args()
    wheels = download(args.dest)
    total = sum(w.stat().st_size for w in wheels) / 2**20
    for wheel in wheels:
        print(f"{wheel.stat().st_size / 2**20:7.2f} MiB  {wheel.name}")
    print(f"{total:7.2f} MiB in {len(wheels)} wheels in {args.dest}")
    if total > LIMIT_MIB:
        sys.exit(f"gpu-wheels: {total:.1f} MiB is over the {LIMIT_MIB} MiB the GPU machine takes")


if __name__ == "__main__":
    main()
