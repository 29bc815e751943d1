"""Where converted models live: ``$PATHPRUNE_CACHE`` or ``~/.cache/pathprune``."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The user cache directory (created on demand by writers, not here)."""
    env = os.environ.get("PATHPRUNE_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "pathprune"
