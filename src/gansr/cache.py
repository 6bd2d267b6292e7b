"""Where gansr keeps files it downloads or builds (standard library only: imported at start-up)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir() -> Path:
    """Where gansr keeps downloads and compiled kernels: ``$GANSR_CACHE``, else ``~/.cache/gansr``."""
    env = os.environ.get("GANSR_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "gansr"
