"""`python -m segkit.export ckpt_path=... format=onnx|torchscript`: the network of a semantic
(or adversarial) checkpoint as an ONNX or TorchScript file with dynamic batch, height, width.

Input ``image`` float [B,C,H,W], normalised as in training; output ``logits`` [B,K,H,W].
``check=true`` runs the exported file on a random image and compares it with PyTorch.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from segkit.run.checkpoints import CheckpointError
from segkit.run.compose import CONF_DIR
from segkit.run.config_checks import ConfigError, check_required, require_extra
from segkit.run.group_choices import exit_on_unknown_choice
from segkit.run.quiet import quiet_third_parties

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}


def export_network(net, path: Path, fmt: str, divisor: int, in_channels: int, opset: int = 18):
    """Write `net` (eval mode; logits or ``{"out": ...}``) to `path` in `fmt`."""
    import torch

    class LogitsOnly(torch.nn.Module):
        """Exports see one tensor out, whatever the network returns."""

        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            out = self.inner(image)
            return out["out"] if isinstance(out, dict) else out

    model = LogitsOnly(net).eval()
    example = torch.randn(1, in_channels, *example_size(divisor, 2))
    if fmt == "torchscript":
        with torch.no_grad():
            traced = torch.jit.trace(model, example, check_trace=False)
        traced.save(str(path))
        return
    batch = torch.export.Dim("batch", min=1, max=1024)
    height = torch.export.Dim("h", min=1, max=16384 // divisor)
    width = torch.export.Dim("w", min=1, max=16384 // divisor)
    torch.onnx.export(
        model,
        (example,),
        str(path),
        input_names=["image"],
        output_names=["logits"],
        dynamic_shapes={"image": {0: batch, 2: divisor * height, 3: divisor * width}},
        opset_version=opset,
        dynamo=True,
        verbose=False,
    )


def example_size(divisor: int, scale: int) -> tuple[int, int]:
    """A valid (height, width) of at least 64 x scale pixels, height != width."""
    unit = divisor * -(-64 // divisor)
    return unit * scale, unit * (scale + 1)


def run_exported(path: Path, fmt: str, images):
    """Logits of an exported file for `images` (a float tensor [B,C,H,W])."""
    import torch

    if fmt == "torchscript":
        with torch.no_grad():
            return torch.jit.load(str(path))(images)
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {"image": images.numpy()})[0])


def export(cfg: DictConfig) -> Path:
    import torch

    from segkit.models.input_size import input_size_divisor
    from segkit.run.facts import task_family
    from segkit.run.from_checkpoint import load_task

    if cfg.format not in FORMATS:
        raise CheckpointError(f"format={cfg.format}: expected one of {sorted(FORMATS)}")
    if cfg.format == "onnx":  # torch's exporter needs onnxscript; the check runs ONNX Runtime
        modules = ("onnx", "onnxscript") + (("onnxruntime",) if cfg.check else ())
        require_extra("export", modules, "segkit.export format=onnx")
    task, ckpt_cfg = load_task(cfg.ckpt_path, "32-true")  # exported in fp32, NCHW
    if task_family(ckpt_cfg) == "instance":
        raise CheckpointError(
            f"{cfg.ckpt_path}: Mask R-CNN export is not supported (its output is a list of "
            "detections per image); export semantic or adversarial models"
        )
    net = task.net.eval().to(memory_format=torch.contiguous_format)
    divisor = input_size_divisor(net)
    path = Path(cfg.output or Path(cfg.ckpt_path).with_suffix(FORMATS[cfg.format]))
    path.parent.mkdir(parents=True, exist_ok=True)
    in_channels = int(ckpt_cfg.data.get("in_channels", 3))
    export_network(net, path, cfg.format, divisor, in_channels, cfg.opset)
    print(f"segkit: wrote {path} (input height and width: multiples of {divisor})")
    if cfg.check:
        images = torch.randn(2, in_channels, *example_size(divisor, 3))
        with torch.no_grad():
            expected = task(images).float()
        got = run_exported(path, cfg.format, images).float()
        agree = (got.argmax(1) == expected.argmax(1)).float().mean().item()
        diff = (got - expected).abs().max().item()
        print(f"segkit: check: max |logit difference| {diff:.2e}, argmax agreement {agree:.4%}")
    return path


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="export")
def main(cfg: DictConfig) -> None:
    quiet_third_parties(bool(cfg.get("verbose", False)))
    try:
        check_required(cfg, "ckpt_path")
        export(cfg)
    except (ConfigError, CheckpointError) as err:
        print(f"segkit: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    exit_on_unknown_choice(sys.argv[1:], CONF_DIR)  # model=unett: one line, closest names
    main()
