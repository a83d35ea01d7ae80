"""Where hdbench keeps its cache, locks and compiled code: ``$HDBENCH_HOME``, else
``$XDG_CACHE_HOME/hdbench``, else ``~/.cache/hdbench``."""

from __future__ import annotations

import os
from pathlib import Path


def default_root() -> Path:
    """``$HDBENCH_HOME``, else ``$XDG_CACHE_HOME/hdbench``, else ``~/.cache/hdbench``."""
    if os.environ.get("HDBENCH_HOME"):
        return Path(os.environ["HDBENCH_HOME"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "hdbench"
