"""Convert the packaged GGUF generator to safetensors once, then reuse it.

Loading ``SmolLM2-135M-Instruct.Q4_1.gguf`` with transformers dequantizes
every weight (~20 s on a laptop CPU). We do that once and save the result as
safetensors in a user cache folder; later loads take well under a second.

The folder holds a ``manifest.json`` with the size and SHA-256 of every file
and the identity of the GGUF it came from. A missing, stale or corrupt cache
is detected on load and rebuilt.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from .cache import cache_root

__all__ = ["converted_dir", "ensure_converted", "check_converted"]

_FORMAT = 1
_MANIFEST = "manifest.json"


def converted_dir(gguf_path: Path) -> Path:
    """Where the safetensors copy of ``gguf_path`` lives."""
    return cache_root() / "generators" / gguf_path.stem


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _source_id(gguf_path: Path) -> dict:
    # By content, not by path or date: every virtual environment installs its
    # own copy of the same file, and they should all share one cache.
    return {"name": gguf_path.name, "size": gguf_path.stat().st_size, "sha256": _sha256(gguf_path)}


def check_converted(folder: Path, gguf_path: Path) -> str | None:
    """Why ``folder`` is not a valid conversion of ``gguf_path``, or None if it is."""
    manifest_path = folder / _MANIFEST
    if not manifest_path.is_file():
        return "no manifest"
    try:
        manifest = json.loads(manifest_path.read_text())
        files = manifest["files"]
    except (ValueError, KeyError, TypeError):
        return "unreadable manifest"
    if manifest.get("format") != _FORMAT:
        return "older cache format"
    if manifest.get("source") != _source_id(gguf_path):
        return "made from a different GGUF file"
    for name, meta in files.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != meta["size"]:
            return f"{name} has the wrong size"
        if _sha256(path) != meta["sha256"]:
            return f"{name} does not match its checksum"
    return None


def ensure_converted(gguf_path: Path) -> Path:
    """Return a folder with the model and tokenizer of ``gguf_path`` as safetensors.

    Converts on first use (and whenever the cache is missing, stale or
    corrupt, saying so in one line); otherwise only verifies the cache.
    """
    folder = converted_dir(gguf_path)
    problem = check_converted(folder, gguf_path)
    if problem is None:
        return folder
    if folder.exists():
        print(f"Generator cache {folder} is unusable ({problem}); rebuilding it.", file=sys.stderr)
    else:
        print(
            f"Converting {gguf_path.name} to safetensors once (about 20 s on a CPU); "
            f"cached in {folder}",
            file=sys.stderr,
        )
    _convert(gguf_path, folder)
    return folder


def _convert(gguf_path: Path, folder: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder.parent.mkdir(parents=True, exist_ok=True)
    # Build in a temporary folder beside the target and move it into place in
    # one step, so an interrupted conversion never looks like a finished one.
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    try:
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
        files = {
            p.name: {"size": p.stat().st_size, "sha256": _sha256(p)}
            for p in sorted(tmp.iterdir())
            if p.is_file()
        }
        manifest = {"format": _FORMAT, "source": _source_id(gguf_path), "files": files}
        (tmp / _MANIFEST).write_text(json.dumps(manifest, indent=2))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
