"""Precision, memory format and autocast dtype, resolved in one place for every job (train,
eval, predict, export, the bench, the GPU check).

``trainer.precision: auto`` is the fastest precision that is still correct on the device;
``model.channels_last: auto`` follows it (`channels_last`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: Lightning's mixed precisions (autocast, fp32 weights).
MIXED = ("bf16-mixed", "16-mixed")


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bf16 in hardware (x86 AVX512-BF16 or AMX, Arm BF16).

    Without it, oneDNN emulates bf16 and autocast is several times slower than fp32 (8-25x
    to train on the AVX2 dev machines, `make bench`).
    """
    import torch

    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return False
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():  # not Linux: trust oneDNN's answer
        return True
    flags = set(cpuinfo.read_text(errors="replace").split())
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def device_type(accelerator: str = "auto") -> str:
    """The torch device type Lightning's `accelerator` flag runs on ("cuda", "cpu", ...)."""
    if accelerator in ("auto", "gpu"):
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return accelerator


def resolve_precision(precision: str | int | None, accelerator: str = "auto") -> str | int | None:
    """Replace "auto" by a Lightning precision for the device `accelerator` resolves to.

    CUDA: "bf16-mixed" where supported (Ampere and newer), else "16-mixed". CPU: "bf16-mixed"
    with native bf16, else "32-true". Other devices: "32-true". Other values pass unchanged.
    """
    if precision != "auto":
        return precision
    import torch

    device = device_type(accelerator)
    if device == "cuda":
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    if device == "cpu":
        return "bf16-mixed" if cpu_has_native_bf16() else "32-true"
    return "32-true"


def trainer_precision(precision: str | int | None, accelerator: str = "auto") -> dict[str, Any]:
    """Keyword arguments that give a Lightning Trainer `precision` ("auto" resolved).

    Mixed precision on CUDA and CPU gets segkit's `ClippableMixedPrecision` plugin (gradient
    clipping with fused optimizers and in manual optimization; real fp16 for "16-mixed" on
    CPU): ``{"plugins": [plugin]}``. Anything else: ``{"precision": value}``.
    """
    resolved = resolve_precision(precision, accelerator)
    device = device_type(accelerator)
    if str(resolved) in MIXED and device in ("cuda", "cpu"):
        from segkit.run.mixed_precision import ClippableMixedPrecision

        return {"plugins": [ClippableMixedPrecision(str(resolved), device)]}
    return {"precision": resolved}


def autocast_dtype(precision: str | int | None):
    """The autocast dtype of a resolved precision: bf16, fp16, or None (no autocast)."""
    import torch

    return {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(str(precision))


def channels_last(setting: bool | str, precision: str | int | None) -> bool:
    """Whether a semantic network runs in channels-last memory format: `setting` when it is a
    bool, else ("auto") under mixed precision only. bf16/fp16 convolutions on GPUs and AMX
    CPUs are faster in it; fp32 stays NCHW, which trains 0-13% faster on CPUs
    (experiments/precision). Results agree to float rounding."""
    if isinstance(setting, bool):
        return setting
    if setting != "auto":
        raise ValueError(f"channels_last={setting!r} is invalid: expected true, false or auto")
    return str(precision) in MIXED


def inference_setting(device: str, precision: str | int | None) -> tuple[str, str | int | None]:
    """(torch device, resolved precision) of the ``device`` ("auto": CUDA where present) and
    ``precision`` options of `segkit.eval`, `segkit.predict` and `segkit.load`."""
    device = device_type() if device == "auto" else device
    return device, resolve_precision(precision, device.split(":")[0])
