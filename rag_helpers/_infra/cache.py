"""The user cache folder, and the one way its entries are built and checked.

Two caches live here: the packaged GGUF generator converted to safetensors
(``gguf_cache``) and the packaged encoder exported to ONNX (``onnx_encoder``).
Both follow the same pattern, written once below:

- an entry is a folder built in a temporary folder beside it and moved into
  place in one step (``build_atomically``), so an interrupted build never
  looks like a finished one;
- its ``manifest.json`` records the cache format, the identity of what it was
  made from (by content, so that every virtual environment's copy of the same
  model shares one entry), and the size and SHA-256 of every file
  (``write_manifest``);
- before use, ``check_manifest`` says in a few words why an entry cannot be
  trusted (missing, malformed, stale, truncated, corrupt), or None.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "CACHE_DIR_ENV",
    "MANIFEST",
    "cache_root",
    "check_cache_dir",
    "sha256_of",
    "file_id",
    "write_manifest",
    "check_manifest",
    "build_atomically",
]

CACHE_DIR_ENV = "RAG_CACHE_DIR"
MANIFEST = "manifest.json"


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


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, read in 4 MiB blocks (model files are hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def file_id(path: Path) -> dict:
    """``{"size": bytes, "sha256": hex}``: what a manifest records of one file."""
    return {"size": path.stat().st_size, "sha256": sha256_of(path)}


def write_manifest(folder: Path, *, fmt: int, source: object, **extra: object) -> dict:
    """Record every file now in ``folder`` (size and SHA-256) in ``folder/manifest.json``; returns it."""
    files = {p.name: file_id(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name != MANIFEST}
    manifest = {"format": fmt, "source": source, "files": files, **extra}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def _malformed(manifest: object, required: tuple[str, ...]) -> str | None:
    """Why a parsed manifest is malformed, or None. Names must be plain file names in the folder."""
    if not isinstance(manifest, dict):
        return "malformed manifest: not an object"
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        return "malformed manifest: 'files' is not a non-empty mapping of names"
    for name, meta in files.items():
        if name in ("", ".", "..") or Path(name).name != name or "/" in name or "\\" in name:
            return f"malformed manifest: file name {name!r} is not a plain name inside the cache folder"
        if not isinstance(meta, dict):
            return f"malformed manifest: entry {name!r} is not an object"
        size, digest = meta.get("size"), meta.get("sha256")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            return f"malformed manifest: entry {name!r} has no valid size"
        if not isinstance(digest, str) or len(digest) != 64:
            return f"malformed manifest: entry {name!r} has no valid sha256"
    for name in required:
        if name not in files:
            return f"malformed manifest: {name} is not listed"
    return None


def check_manifest(
    folder: Path,
    *,
    fmt: int,
    source: Callable[[], object],
    other_source: str,
    required: tuple[str, ...] = (),
) -> str | None:
    """Why ``folder`` is not a trustworthy cache entry, or None if every file matches its manifest.

    ``source()`` gives the identity of what the entry must have been made from
    (called only once the manifest is readable: it may hash a large file);
    ``other_source`` is the reason given when it differs. ``required`` names
    files the manifest must list.
    """
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        return "no manifest"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        return "unreadable manifest"
    problem = _malformed(manifest, required)
    if problem:
        return problem
    if manifest.get("format") != fmt:
        return "older cache format"
    if manifest.get("source") != source():
        return other_source
    for name, meta in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != meta["size"]:
            return f"{name} has the wrong size"
        if sha256_of(path) != meta["sha256"]:
            return f"{name} does not match its checksum"
    return None


def build_atomically(folder: Path, build: Callable[[Path], None]) -> None:
    """Run ``build(tmp)`` in a new temporary folder beside ``folder``, then move it into place in one step.

    An interrupted build leaves only a temporary folder (named ``folder.name``
    plus a random suffix), never a ``folder`` that looks finished.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    try:
        build(tmp)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
