"""What the throughput rows share: the models compared, segkit's config as `segkit.train`
composes it, the settings a config resolves to, summaries of repeated timings, and the
hand-written PyTorch loop segkit is measured against."""

from __future__ import annotations

import inspect
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

from segkit.run.compose import CONF_DIR
from segkit.run.plan import plan_job
from segkit.run.precision import autocast_dtype

#: Benchmark model name -> `segkit.train` overrides that select it.
MODELS: dict[str, tuple[str, ...]] = {
    "unet_resnet18": ("model=unet",),
    "unet_resnet34": ("model=unet", "model.net.encoder_name=resnet34"),
    "deeplabv3plus": ("model=deeplabv3plus",),
}
#: Plain fp32 in NCHW: the reference every speed-up is measured against.
FP32_NCHW = ("trainer=fp32", "model.channels_last=false")
#: What `trainer.precision=auto` picks on GPUs and CPUs with native bf16.
BF16_CHANNELS_LAST = ("trainer.precision=bf16-mixed", "model.channels_last=true")


def compose_run(overrides: Sequence[str], output_dir: Path) -> DictConfig:
    """`segkit.train`'s config for `overrides`, composed as the command line does, with run
    outputs in `output_dir` (Hydra's run-time values such as group choices are set too)."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[*overrides, f"paths.output_dir={output_dir}"],
            return_hydra_config=True,
        )
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def resolved_setting(cfg: DictConfig) -> tuple[str, torch.memory_format]:
    """(Lightning precision, memory format) that `cfg` trains with on this machine, decided
    where `segkit.train` decides them (`segkit.run.plan.plan_job`)."""
    plan = plan_job(cfg)
    memory_format = torch.channels_last if plan.channels_last else torch.contiguous_format
    return str(plan.precision), memory_format


def describe(precision: str, memory_format: torch.memory_format) -> str:
    return f"{precision} {'channels-last' if memory_format == torch.channels_last else 'NCHW'}"


def summary(values: Sequence[float], digits: int = 4) -> dict[str, float]:
    """Median, min and max of repeated measurements."""
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "n": len(values),
    }


def synthetic_batches(cfg: DictConfig, count: int) -> list[dict]:
    """The first `count` training batches of `cfg.data` (read once, then served from memory)."""
    datamodule = instantiate(cfg.data, _convert_="all", num_workers=0)
    datamodule.setup("fit")
    batches = []
    for batch in datamodule.train_dataloader():
        batches.append(batch)
        if len(batches) == count:
            return batches
    raise ValueError(f"data gives fewer than {count} training batches")


class PlainLoop:
    """The hand-written reference: the training loop a user writes without a framework, with
    the network, loss, optimizer, scheduler, precision and memory format `cfg` describes
    (resolved on this machine as `segkit.train` resolves them).

    Each step: inputs in the memory format, forward under autocast (mixed precision only),
    loss in fp32, zero_grad, backward, optimizer and scheduler step. `compiled`: the network
    through `torch.compile` (inductor). Batches are dicts
    ``{"image": [B,C,H,W], "mask": [B,H,W]}`` served in turn from memory, copied to `device`
    (e.g. "cuda") each step as a Trainer would.
    """

    def __init__(
        self,
        cfg: DictConfig,
        batches: Sequence[dict],
        total_steps: int,
        seed: int = 0,
        compiled: bool = False,
        device: str = "cpu",
    ) -> None:
        precision, memory_format = resolved_setting(cfg)
        #: What this loop trains in, e.g. "32-true NCHW" (plus " compiled").
        self.setting = describe(precision, memory_format) + " compiled" * compiled
        torch.manual_seed(seed)
        self.device = torch.device(device)
        self.net = instantiate(cfg.model.net).to(self.device, memory_format=memory_format).train()
        self.forward = torch.compile(self.net) if compiled else self.net
        self.loss = instantiate(cfg.loss, _convert_="all").to(self.device)
        self.optimizer = instantiate(cfg.optimizer)(model=self.net)
        self.scheduler = None
        if cfg.get("scheduler"):
            factory = instantiate(cfg.scheduler)
            params = inspect.signature(getattr(factory, "func", factory)).parameters
            kwargs = {
                k: total_steps for k in ("total_steps", "total_iters", "T_max") if k in params
            }
            if "max_lr" in params:
                kwargs["max_lr"] = [g["lr"] for g in self.optimizer.param_groups]
            self.scheduler = factory(optimizer=self.optimizer, **kwargs)
        self.dtype = autocast_dtype(precision)
        self.memory_format = memory_format
        self.batches = batches
        self.done = 0

    def step(self) -> torch.Tensor:
        batch = self.batches[self.done % len(self.batches)]
        images = batch["image"].to(self.device, non_blocking=True)
        images = images.contiguous(memory_format=self.memory_format)
        mask = batch["mask"].to(self.device, non_blocking=True)
        kind, enabled = self.device.type, bool(self.dtype)
        with torch.autocast(kind, dtype=self.dtype or torch.bfloat16, enabled=enabled):
            logits = self.forward(images)
        loss = self.loss(logits.float(), mask)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        self.done += 1
        return loss

    def run(self, steps: int) -> float:
        """Seconds for `steps` training steps (queued GPU work included)."""
        with torch.enable_grad():
            self._synchronize()
            start = time.perf_counter()
            for _ in range(steps):
                self.step()
            self._synchronize()
            return time.perf_counter() - start

    def _synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def plain_loops(
    base: Sequence[str],
    settings: dict[str, Sequence[str]],
    output_dir: Path,
    total_steps: int,
    compiled: Sequence[str] = (),
) -> dict[str, PlainLoop]:
    """One `PlainLoop` per setting (name -> overrides added to `base`), all with the same
    initial weights and the same two in-memory batches; names in `compiled` use
    `torch.compile`."""
    loops: dict[str, PlainLoop] = {}
    batches = None
    for name, extra in settings.items():
        cfg = compose_run([*base, *extra], output_dir)
        batches = batches or synthetic_batches(cfg, 2)
        loops[name] = PlainLoop(cfg, batches, total_steps, compiled=name in compiled)
    return loops
