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

The crash-safety tools every writer on disk uses (the index store, both
caches, the embedding cache) live here too: ``write_file_atomically``
(a temporary file beside the target, fsync, rename, fsync of the folder),
``folder_lock`` (an ``fcntl.flock`` on a lock file: one writer at a time,
across processes), and ``temporary_name`` / ``is_stale``: a temporary name
carries its writer's process id, and it is stale (safe to remove) only when
that process is gone and no one holds the lock file beside it. A process
killed with ``kill -9`` releases its locks, so "the lock is free" is proof
that no writer is still at work.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import sys
from collections.abc import Callable, Iterator
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
    "fsync_file",
    "fsync_folder",
    "write_file_atomically",
    "folder_lock",
    "temporary_name",
    "owner_pid",
    "is_stale",
    "hold_owner_lock",
    "remove_stale",
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
    write_file_atomically(folder / MANIFEST, lambda f: f.write(json.dumps(manifest, indent=2).encode()))
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

    An interrupted build leaves only a temporary folder (``folder.name``, the
    writer's process id and a random suffix: ``temporary_name``), never a
    ``folder`` that looks finished; the caller removes such leftovers under
    its lock (``remove_stale``). The files are flushed to disk (fsync) before
    the move. An entry already there is swapped with the new one in one
    ``renameat2(RENAME_EXCHANGE)`` where the system has it (Linux), so that
    a kill at any moment leaves the old entry or the new one; elsewhere it is
    moved aside first, and a kill between the two renames leaves no entry
    (a cache, so the next run builds it again).
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / temporary_name(folder.name)
    tmp.mkdir()
    try:
        build(tmp)
        for path in tmp.rglob("*"):
            if path.is_file():
                fsync_file(path)
        fsync_folder(tmp)
        if folder.exists() and _exchange(tmp, folder):
            pass  # tmp now holds the old entry, removed below
        else:
            if folder.exists():
                aside = folder.parent / temporary_name(folder.name)
                os.rename(folder, aside)
                os.replace(tmp, folder)
                tmp = aside
            else:
                os.replace(tmp, folder)
        fsync_folder(folder.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------- crash-safe writing


def fsync_file(path: Path) -> None:
    """Flush a written file's bytes to disk before it is renamed into place."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (the renames done in it) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a folder: nothing more can be done
        pass
    finally:
        os.close(fd)


_RENAME_EXCHANGE = 2
_libc = None


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where that is not available."""
    global _libc
    if not sys.platform.startswith("linux"):
        return False
    try:
        if _libc is None:
            _libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = _libc.renameat2
    except (OSError, AttributeError):  # glibc < 2.28, or another C library
        return False
    at_fdcwd = -100
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):  # the file system cannot swap
        return False
    raise OSError(err, os.strerror(err), str(b))


def write_file_atomically(path: Path, write: Callable, *, fsync: bool = True) -> None:
    """Write a file whole or not at all: ``write(f)`` into a temporary file beside ``path``, fsync, rename.

    The temporary file is named by ``temporary_name``; if this process is
    killed while writing, it stays behind until ``remove_stale`` removes it.
    """
    tmp = path.parent / temporary_name(path.name, suffix=".tmp")
    try:
        with open(tmp, "xb") as f:
            write(f)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        if fsync:
            fsync_folder(path.parent)
    finally:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)


@contextlib.contextmanager
def folder_lock(lock_path: Path, *, shared: bool = False, wait_message: str | None = None) -> Iterator[bool]:
    """Hold an ``fcntl.flock`` on ``lock_path`` (created if missing): exclusive, or shared for readers.

    Yields True when the lock is held, False when the lock file can neither
    be created nor opened (a read-only folder: no writer of ours can be at
    work in it either). ``wait_message`` is printed once if another process
    holds the lock and this one waits.
    """
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        try:
            fd = os.open(lock_path, os.O_RDONLY)
        except OSError:
            yield False
            return
    try:
        kind = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        try:
            fcntl.flock(fd, kind | fcntl.LOCK_NB)
        except BlockingIOError:
            if wait_message:
                print(wait_message, file=sys.stderr)
            fcntl.flock(fd, kind)
        yield True
    finally:
        os.close(fd)  # closing releases the lock


_TEMP_RE = re.compile(r"\.tmp-(\d+)-[0-9a-f]{8}(?:\.tmp)?$")


def temporary_name(name: str, *, pid: int | None = None, suffix: str = "") -> str:
    """A temporary name for ``name`` that records its writer: ``.NAME.tmp-PID-RANDOM`` (+ ``suffix``)."""
    return f".{name}.tmp-{os.getpid() if pid is None else pid}-{secrets.token_hex(4)}{suffix}"


def owner_pid(path: Path) -> int | None:
    """The writer's process id recorded in a ``temporary_name``, or None if ``path`` is not one."""
    match = _TEMP_RE.search(path.name)
    return int(match.group(1)) if match else None


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


_OWNER_LOCK = ".owner.lock"


def hold_owner_lock(folder: Path) -> int:
    """Lock ``folder/.owner.lock`` for as long as the returned descriptor stays open (the writer's life)."""
    fd = os.open(folder / _OWNER_LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def is_stale(path: Path) -> bool:
    """True if ``path`` is a temporary file or folder whose writer is provably gone.

    Provably: its name records a process id that is not running, and, for a
    folder with an owner lock inside (``hold_owner_lock``), no one holds that
    lock. (A process id is a number the system reuses; a reused one only
    makes a leftover wait for a later run. The lock guards against a
    writer in another process namespace sharing the folder.)
    """
    pid = owner_pid(path)
    if pid is None or _pid_alive(pid):
        return False
    lock = path / _OWNER_LOCK
    if path.is_dir() and lock.exists():
        try:
            fd = os.open(lock, os.O_RDONLY)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        finally:
            os.close(fd)
    return True


def remove_stale(folder: Path, prefix: str = "", *, every: bool = False) -> list[Path]:
    """Remove the temporary files and folders in ``folder`` left by killed writers; returns what went.

    ``prefix`` narrows the search to names starting ``.PREFIX``. With
    ``every=True`` (the caller holds the lock every writer of these names
    holds while writing) any temporary name is stale, whatever its process id.
    """
    removed = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for path in entries:
        if not path.name.startswith("." + prefix) or owner_pid(path) is None:
            continue
        if not (every or is_stale(path)):
            continue
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:
            pass
        except OSError:
            continue
        removed.append(path)
    return removed
