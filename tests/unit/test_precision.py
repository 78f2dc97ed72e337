"""trainer.precision=auto picks the fast precision that is correct for the device."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from segkit.run import precision as precision_mod
from segkit.run.precision import resolve_precision


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


@pytest.mark.parametrize(
    ("setting", "precision", "expected"),
    [("auto", "bf16-mixed", True), ("auto", "16-mixed", True), ("auto", "32-true", False),
     (True, "32-true", True), (False, "bf16-mixed", False)],
)  # fmt: skip
def test_the_builder_gives_the_task_the_memory_format_of_the_jobs_precision(
    compose_train, setting, precision, expected
):
    from segkit.run.build import build_task
    from segkit.run.plan import plan_job
    from segkit.run.precision import channels_last

    assert channels_last(setting, precision) is expected
    cfg = compose_train(f"model.channels_last={str(setting).lower()}", "trainer.on_nonfinite=skip")
    plan = plan_job(cfg, precision=precision)  # the job decides once; the task follows
    assert (plan.precision, plan.channels_last) == (precision, expected)
    task = build_task(cfg, plan)
    wanted = torch.channels_last if expected else torch.contiguous_format
    assert task.memory_format == wanted and task.hparams.channels_last is expected
    conv = next(m for m in task.net.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=wanted)
    assert task.on_nonfinite == "skip"  # trainer.on_nonfinite reaches the constructor
    with pytest.raises(ValueError, match="channels_last='yes' is invalid"):
        channels_last("yes", precision)
