"""The user cache folder shared by the generator and embedding caches."""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CACHE_DIR_ENV", "cache_root"]

CACHE_DIR_ENV = "RAG_CACHE_DIR"


def cache_root() -> Path:
    """``$RAG_CACHE_DIR``, else ``$XDG_CACHE_HOME/rag-from-scratch``, else ``~/.cache/rag-from-scratch``."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "rag-from-scratch"
