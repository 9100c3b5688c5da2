"""The user cache folder shared by the generator and embedding caches."""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CACHE_DIR_ENV", "cache_root", "check_cache_dir"]

CACHE_DIR_ENV = "RAG_CACHE_DIR"


def cache_root() -> Path:
    """``$RAG_CACHE_DIR``, else ``$XDG_CACHE_HOME/rag-from-scratch``, else ``~/.cache/rag-from-scratch``."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "rag-from-scratch"


def check_cache_dir(folder: Path) -> str | None:
    """Why ``folder`` cannot hold cache files (it is a file, or cannot be created or written), or None.

    Creates the folder if it is missing.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        return f"{folder} is a file, not a folder"
    except OSError as exc:
        return f"{folder} cannot be created: {exc.strerror or exc}"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"{folder} is not writable"
    return None
