"""What every run leaves in its run dir besides Lightning's checkpoints and logs."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

from omegaconf import DictConfig, OmegaConf


def write_resolved_config(cfg: DictConfig, run_dir: Path) -> None:
    """Replace Hydra's `.hydra/config.yaml` by the resolved config (interpolations filled in),
    so the file says exactly what ran; the command-line overrides stay in overrides.yaml."""
    (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml", resolve=True)


def write_metrics(metrics: Mapping[str, float], path: Path) -> None:
    """JSON of float metrics; NaN (an IoU with no defined value) is written as null."""
    clean = {k: (None if math.isnan(v) else v) for k, v in sorted(metrics.items())}
    path.write_text(json.dumps(clean, indent=2) + "\n")


def print_summary(metrics: Mapping[str, float], monitor: str, run_dir: Path, best: str) -> None:
    lines = ["", "segkit: training finished"]
    for key in (monitor, "val/acc", f"test/{monitor.split('/', 1)[-1]}"):
        if key in metrics:
            lines.append(f"  {key:<16} {metrics[key]:.4f}")
    lines.append(f"  {'run dir':<16} {run_dir}")
    lines.append(f"  {'best checkpoint':<16} {best or '(none saved)'}")
    print("\n".join(lines), flush=True)
