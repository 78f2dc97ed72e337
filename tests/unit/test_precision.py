"""trainer.precision=auto picks the fast precision that is correct for the device."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from segkit.utils import precision as precision_mod
from segkit.utils.precision import resolve_precision


@pytest.mark.parametrize("given", ["32-true", "bf16-mixed", "16-mixed", 32, None])
def test_explicit_precision_is_kept(given):
    assert resolve_precision(given, "cpu") == given


def test_cpu_without_native_bf16_trains_in_fp32(monkeypatch):
    monkeypatch.setattr(precision_mod, "cpu_has_native_bf16", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_precision("auto", "auto") == "32-true"
    assert resolve_precision("auto", "cpu") == "32-true"


def test_cpu_with_native_bf16_uses_bf16_mixed(monkeypatch):
    monkeypatch.setattr(precision_mod, "cpu_has_native_bf16", lambda: True)
    assert resolve_precision("auto", "cpu") == "bf16-mixed"


@pytest.mark.parametrize(("bf16", "expected"), [(True, "bf16-mixed"), (False, "16-mixed")])
def test_cuda_uses_bf16_where_supported(monkeypatch, bf16, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    assert resolve_precision("auto", "auto") == expected
    assert resolve_precision("auto", "gpu") == expected


def test_this_machines_answer_matches_its_cpu_flags():
    cpuinfo = Path("/proc/cpuinfo")
    flags = set(cpuinfo.read_text().split()) if cpuinfo.is_file() else set()
    native = bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})
    assert precision_mod.cpu_has_native_bf16() == (
        native and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    )
