"""Convert the packaged GGUF generator to safetensors once, then reuse it.

Loading ``SmolLM2-135M-Instruct.Q4_1.gguf`` with transformers dequantizes
every weight (about 40 s on a 2-core CPU, measured). We do that once and save
the result as safetensors in a user cache folder; later loads take about a
second.

The folder holds a ``manifest.json`` with the size and SHA-256 of every file
and the identity of the GGUF it came from. A missing, stale, corrupt or
malformed cache is detected on load and rebuilt. A valid cache is used even
where its folder cannot be written (another user's, a read-only disk):
validity is checked first, writability only when there is something to
write. A lock file makes a second process wait for a conversion already
under way instead of converting again, and the temporary folder of a
conversion that was killed half-way is removed by the next one. Where the
cache folder cannot be used at all, the model is converted into a temporary
folder for this process only (``rag-generator.tmp-PID-...`` in the system's
temporary folder, locked for the process's life), with one line saying which
path failed and what to set; such a folder left by a run that was killed is
removed by a later run once its process is gone.
"""
from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import secrets
import shutil
import sys
import tempfile
from pathlib import Path

from .cache import (
    CACHE_DIR_ENV,
    build_atomically,
    cache_root,
    check_cache_dir,
    check_manifest,
    hold_owner_lock,
    is_stale,
    sha256_of,
    write_manifest,
)

__all__ = ["converted_dir", "ensure_converted", "check_converted", "MEASURED_CONVERSION_S"]

_FORMAT = 1
_LOCK = ".convert.lock"
_RUN_ONLY = "rag-generator"  # this-run-only conversions: <tmp>/rag-generator.tmp-PID-RANDOM
_owner_locks: list[int] = []  # held until this process ends
#: What one conversion took on a 2-core CPU (benchmarks/RESULTS.md): said in the notice.
MEASURED_CONVERSION_S = 40


def converted_dir(gguf_path: Path) -> Path:
    """Where the safetensors copy of ``gguf_path`` lives."""
    return cache_root() / "generators" / gguf_path.stem


def _source_id(gguf_path: Path) -> dict:
    # By content, not by path or date: every virtual environment installs its
    # own copy of the same file, and they should all share one cache.
    return {"name": gguf_path.name, "size": gguf_path.stat().st_size, "sha256": sha256_of(gguf_path)}


def check_converted(folder: Path, gguf_path: Path) -> str | None:
    """Why ``folder`` is not a valid conversion of ``gguf_path``, or None if it is."""
    return check_manifest(
        folder, fmt=_FORMAT, source=lambda: _source_id(gguf_path), other_source="made from a different GGUF file"
    )


def ensure_converted(gguf_path: Path, *, rebuild_because: str | None = None) -> Path:
    """Return a folder with the model and tokenizer of ``gguf_path`` as safetensors.

    Converts on first use (and whenever the cache is missing, stale or
    corrupt, saying so in one line); otherwise only verifies the cache.
    ``rebuild_because``: the cache passed its checks but is unusable for this
    reason (it failed to load): converted again, saying so.
    """
    folder = converted_dir(gguf_path)
    remove_stale_run_only_copies()
    # Validity before writability: a valid cache that cannot be written is still read.
    if rebuild_because is None and check_converted(folder, gguf_path) is None:
        return folder
    problem = check_cache_dir(folder.parent)
    if problem is not None:
        if rebuild_because is not None:
            problem = f"{folder} {rebuild_because}, and {problem}"
        return _convert_for_this_process(gguf_path, problem)
    with _conversion_lock(folder.parent):
        # Another process may have converted it while we waited for the lock.
        problem = rebuild_because or check_converted(folder, gguf_path)
        if problem is None:
            return folder
        _remove_stale_temporaries(folder)
        if rebuild_because is not None:
            print(f"Generator cache {folder} {rebuild_because}; rebuilding it.", file=sys.stderr)
        elif folder.exists():
            print(f"Generator cache {folder} is unusable ({problem}); rebuilding it.", file=sys.stderr)
        else:
            print(
                f"Converting {gguf_path.name} to safetensors once (it took about {MEASURED_CONVERSION_S} s "
                f"on a 2-core CPU); cached in {folder}",
                file=sys.stderr,
            )
        _convert(gguf_path, folder)
    return folder


@contextlib.contextmanager
def _conversion_lock(parent: Path):
    """Hold an exclusive lock on ``parent/.convert.lock``: one conversion at a time, across processes."""
    with open(parent / _LOCK, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print("Another process is converting the generator; waiting for it.", file=sys.stderr)
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _remove_stale_temporaries(folder: Path) -> None:
    # Called with the lock held: no other conversion is writing one now, so
    # any temporary folder is a leftover of one that was killed (named
    # .NAME.tmp-PID-RANDOM by build_atomically; NAME.RANDOM by earlier versions).
    for tmp in [*folder.parent.glob(folder.name + ".*"), *folder.parent.glob(f".{folder.name}.tmp-*")]:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
            print(f"Removed {tmp}, left behind by an interrupted conversion.", file=sys.stderr)


def remove_stale_run_only_copies() -> None:
    """Remove this-run-only conversions in the system's temporary folder whose process is gone (kill -9)."""
    for tmp in Path(tempfile.gettempdir()).glob(f"{_RUN_ONLY}.tmp-*"):
        if tmp.is_dir() and is_stale(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
            if not tmp.exists():
                print(f"Removed {tmp}, left behind by a run that was killed while converting the generator.",
                      file=sys.stderr)


def _convert_for_this_process(gguf_path: Path, problem: str) -> Path:
    tmp = Path(tempfile.gettempdir()) / f"{_RUN_ONLY}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir(mode=0o700)
    # Locked for this process's life: no other run removes it while it is in use; removed at exit,
    # and by a later run if this one is killed.
    _owner_locks.append(hold_owner_lock(tmp))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    print(
        f"The cache folder cannot be used ({problem}); set {CACHE_DIR_ENV} to a writable folder. "
        f"Converting {gguf_path.name} for this run only (about {MEASURED_CONVERSION_S} s).",
        file=sys.stderr,
    )
    _convert(gguf_path, tmp / "model")
    return tmp / "model"


def _convert(gguf_path: Path, folder: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    def build(tmp: Path) -> None:
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        model = AutoModelForCausalLM.from_pretrained(
            gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32
        )
        # The weights are plain float32 once dequantized, but the model still
        # carries the GGUF quantizer's marks, and save_pretrained refuses
        # "quantized" models. Clear them: what we save is not quantized.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        write_manifest(tmp, fmt=_FORMAT, source=_source_id(gguf_path))

    build_atomically(folder, build)
