"""Which W&B run a training run logs to: a resumed run continues its own W&B run."""

from __future__ import annotations

from pathlib import Path

from segkit.run.checkpoints import CONFIG_KEY
from segkit.run.resume import latest_hpc_checkpoint


def new_run_id() -> str:
    """A W&B-style run id: 8 characters of [a-z0-9]."""
    import secrets
    import string

    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(8))


def run_id_to_use(
    configured: str | None, ckpt_path: str | None, run_dir: Path | None = None
) -> str:
    """The run id of this run: the configured one, else the resumed checkpoint's, else new.

    Without ``ckpt_path``, the newest ``<run_dir>/hpc_ckpt_<n>.ckpt`` counts as the resumed
    checkpoint: Lightning resumes a requeued SLURM job from it by itself."""
    if configured:
        return str(configured)
    resumed = ckpt_path or (latest_hpc_checkpoint(run_dir) if run_dir else None)
    if resumed:
        stored = checkpoint_run_id(str(resumed))
        if stored:
            return stored
    return new_run_id()


def checkpoint_run_id(ckpt_path: str) -> str | None:
    """The W&B run id in a segkit checkpoint's stored config (None if it has none)."""
    import torch

    path = Path(ckpt_path)
    if not path.is_file():  # "last" and other Lightning shortcuts, or a missing file:
        return None  # Lightning reports those itself
    try:  # mmap: only the config is read, not the weights
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # a bad checkpoint fails with Lightning's own message when loaded
        return None
    logger_cfg = (checkpoint.get(CONFIG_KEY) or {}).get("logger") or {}
    return (logger_cfg.get("wandb") or {}).get("id")
