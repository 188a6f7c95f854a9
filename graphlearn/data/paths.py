"""Where datasets and caches live.

* data root: the ``root`` argument, else ``$GRAPHLEARN_DATA``, else
  ``~/.cache/graphlearn/data``.
* cache: ``$GRAPHLEARN_CACHE``, else ``~/.cache/graphlearn/cache``; used for
  processed files that must not be written next to read-only raw data.

Nothing here creates a directory; callers create what they write into.
"""

from __future__ import annotations

import os
from pathlib import Path


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Resolve the data root folder (see module docstring)."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("GRAPHLEARN_DATA")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "graphlearn" / "data"


def cache_dir() -> Path:
    """Resolve the writable cache folder (see module docstring)."""
    env = os.environ.get("GRAPHLEARN_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "graphlearn" / "cache"
