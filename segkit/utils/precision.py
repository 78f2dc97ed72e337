"""``trainer.precision: auto``: the fastest precision that is still correct on the device."""

from __future__ import annotations

from pathlib import Path


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


def resolve_precision(precision: str | int | None, accelerator: str = "auto") -> str | int | None:
    """Replace "auto" by a Lightning precision for the device `accelerator` resolves to.

    CUDA: "bf16-mixed" where supported (Ampere and newer), else "16-mixed". CPU: "bf16-mixed"
    with native bf16, else "32-true". Other devices: "32-true". Other values pass unchanged.
    """
    if precision != "auto":
        return precision
    import torch

    device = accelerator
    if accelerator in ("auto", "gpu"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    if device == "cpu":
        return "bf16-mixed" if cpu_has_native_bf16() else "32-true"
    return "32-true"
