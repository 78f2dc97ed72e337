"""Where `segkit.eval` writes, and what it records: each evaluation in its own folder, named
after the checkpoint and the inference mode and never overwritten, with the checkpoint's path
and SHA-256, the inference options, the data and the provenance beside the metrics."""

from __future__ import annotations

import csv
import hashlib
import json
import math
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from segkit.run.checkpoints import CheckpointError
from segkit.run.from_checkpoint import default_output_dir
from segkit.run.outputs import write_metrics


def evaluation_dir(ckpt_path: str, split: str, inference: str, output_dir: str | None) -> Path:
    """``<run dir>/eval/<split>/<checkpoint stem>-<inference>`` (``-2``, ``-3``... when it is
    taken), or `output_dir`, which must not hold an evaluation yet (CheckpointError)."""
    if output_dir:
        out = Path(output_dir)
        if (out / "metrics.json").exists():
            raise CheckpointError(
                f"output_dir={out} already holds an evaluation (metrics.json): give another "
                "output_dir, or leave it unset for a folder of its own"
            )
        return out
    base = default_output_dir(ckpt_path, "eval", split, f"{Path(ckpt_path).stem}-{inference}")
    out, number = base, 1
    while out.exists():
        number += 1
        out = base.with_name(f"{base.name}-{number}")
    return out


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_evaluation(
    metrics: dict[str, float],
    out: Path,
    cfg: DictConfig,
    data_cfg: DictConfig,
    inference: str,
    device: str,
    precision: str | int,
) -> None:
    """``metrics.json`` (flat, as a run's), ``per_class.csv`` (class, IoU, accuracy of the
    evaluated split, semantic models) and ``evaluation.json`` (what produced them) in `out`."""
    from segkit.run.provenance import provenance

    out.mkdir(parents=True, exist_ok=True)
    write_metrics(metrics, out / "metrics.json")
    write_per_class(metrics, cfg.split, out / "per_class.csv")
    record = {
        "checkpoint": {"path": str(Path(cfg.ckpt_path).resolve()), "sha256": sha256(cfg.ckpt_path)},
        "split": cfg.split,
        "evaluator": cfg.evaluator,
        "inference": {"name": inference, **OmegaConf.to_container(cfg.inference, resolve=True)},
        "data": {k: data_cfg.get(k) for k in ("_target_", "root") if data_cfg.get(k) is not None},
        "provenance": provenance(precision, device.split(":")[0]),
        "metrics": {k: (None if math.isnan(v) else v) for k, v in sorted(metrics.items())},
    }
    (out / "evaluation.json").write_text(json.dumps(record, indent=2, default=str) + "\n")


def write_per_class(metrics: dict[str, float], split: str, path: Path) -> Path | None:
    """``class,iou,acc`` rows from the ``<split>/iou/<class>`` and ``<split>/acc/<class>``
    metrics (None, nothing written, for models without them)."""
    prefix = f"{split}/iou/"
    names = [k.removeprefix(prefix) for k in metrics if k.startswith(prefix)]
    if not names:
        return None
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["class", "iou", "acc"])
        for name in names:
            row = [metrics.get(f"{prefix}{name}"), metrics.get(f"{split}/acc/{name}")]
            writer.writerow(
                [name, *("" if v is None or math.isnan(v) else f"{v:.6f}" for v in row)]
            )
    return path
