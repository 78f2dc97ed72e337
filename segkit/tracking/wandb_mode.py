"""Whether a W&B run goes online, decided before ``wandb.init`` so nothing waits on a network.

Standard library only: `segkit.train` asks this before importing wandb.
"""

from __future__ import annotations

import netrc
import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

#: What ``logger.wandb.mode`` accepts.
MODES = ("auto", "online", "offline", "disabled")
_DEFAULT_HOST = "api.wandb.ai"


def decide_mode(requested: str, environ: Mapping[str, str] = os.environ) -> tuple[str, str]:
    """(mode, reason) for a run: "online", "offline" or "disabled".

    An explicit ``requested`` mode wins; "auto" follows ``WANDB_MODE`` when the user set it,
    else goes online only when credentials exist (``WANDB_API_KEY`` or a ``wandb login``
    entry in the netrc file) and offline otherwise.
    """
    if requested not in MODES:
        raise ValueError(f"logger.wandb.mode={requested!r}: expected one of {', '.join(MODES)}")
    if requested != "auto":
        return requested, f"logger.wandb.mode={requested}"
    env_mode = environ.get("WANDB_MODE", "").strip().lower()
    if env_mode in ("offline", "dryrun"):
        return "offline", f"WANDB_MODE={env_mode}"
    if env_mode == "disabled":
        return "disabled", "WANDB_MODE=disabled"
    if has_credentials(environ):
        return "online", "W&B credentials found"
    return "offline", "no W&B credentials (WANDB_API_KEY or `wandb login`)"


def has_credentials(environ: Mapping[str, str] = os.environ) -> bool:
    """True when ``WANDB_API_KEY`` is set or the netrc file has a password for the W&B host."""
    if environ.get("WANDB_API_KEY", "").strip():
        return True
    host = urlparse(environ.get("WANDB_BASE_URL", "")).netloc or _DEFAULT_HOST
    path = Path(environ.get("NETRC") or Path(environ.get("HOME", "~")).expanduser() / ".netrc")
    try:
        entry = netrc.netrc(str(path)).authenticators(host)
    except (OSError, netrc.NetrcParseError):
        return False
    return bool(entry and entry[2])
