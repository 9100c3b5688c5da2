"""Embeddings cached on disk, keyed by the model and the texts.

Embedding the knowledge base is the slow step of building a RAG index, and a
re-run (a notebook restarted, the pipeline built again) embeds the very same
texts with the very same model. ``embed_cached`` keeps the result in a
``.npz`` file and loads it back instead, in a few milliseconds.

The file holds two arrays, read with ``allow_pickle=False`` (a cache file is
data, never code): ``embeddings`` (n, dim) float32 and ``key``, a short JSON
text naming the model (a fingerprint of its weights and settings), the
texts (a SHA-256 of them, in order) and the vectors themselves (a SHA-256 of
their bytes, so rows swapped or edited under the same key are caught). A file whose key does not match
(stale), that cannot be read, or whose array has the wrong shape or dtype,
non-finite values or rows that are not unit length (corrupt) is recomputed,
with one line saying so. Files are written to a temporary name, flushed to
disk and renamed, under a lock on ``.lock`` in the cache folder, so an
interrupted write never leaves a half file behind, and the temporary file of
a writer that was killed is removed by the next write (under that lock no
other writer can be at work on it). A valid file is used even where the
folder cannot be written (another user's cache, a read-only disk): whether
the folder is writable matters only when there is something to write.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sentence_transformers import SentenceTransformer

from .embeddings import embed
from .vectors import check_unit_rows
from .._infra.cache import CACHE_DIR_ENV, cache_root, check_cache_dir, folder_lock, remove_stale, write_file_atomically
from .._infra.validation import check_texts

__all__ = ["embed_cached", "embedding_cache_path", "model_fingerprint", "texts_digest"]

_FORMAT = 2  # 2: the key holds a checksum of the vectors
# Values sampled from each weight tensor for the model fingerprint.
_SAMPLES_PER_TENSOR = 1024


@dataclass(frozen=True)
class CacheUse:
    """Where ``embed_cached`` looked, and whether the embeddings came from there."""

    path: Path
    hit: bool

    def __str__(self) -> str:
        if self.hit:
            return f"Embeddings loaded from the cache {self.path}"
        return f"Embeddings computed and cached in {self.path}"


def embed_cached(
    texts: Sequence[str],
    encoder: SentenceTransformer,
    cache_dir: str | os.PathLike | None = None,
    *,
    report: bool = False,
):
    """``embed(texts, encoder)``, loaded from the cache when it was computed before.

    Parameters
    ----------
    texts : list of n non-empty strings
    encoder : from ``load_encoder``
    cache_dir : folder of the cache files; default
        ``cache_root() / "embeddings"``
        (``$RAG_CACHE_DIR/embeddings`` when that is set).

    Returns
    -------
    (n, dim) float32, unit rows: the same numbers ``embed`` gives; with
    ``report=True``, the pair ``(vectors, CacheUse)``.
    """
    texts = check_texts(texts, name="texts")
    key = _cache_key(texts, encoder)
    path = _path_for(key, cache_dir)
    if path.is_dir():  # it can be neither read nor replaced by a file
        print(f"Embedding cache not used: {path} is a folder, not a cache file; remove it "
              f"or set {CACHE_DIR_ENV} to another folder.", file=sys.stderr)
        vectors = embed(texts, encoder)
        return (vectors, None) if report else vectors
    # Validity before writability: a valid file in a folder we cannot write is still read.
    vectors, problem = _load(path, key, len(texts), embedding_dimension(encoder))
    if vectors is not None:
        return (vectors, CacheUse(path, True)) if report else vectors
    unusable = check_cache_dir(path.parent)
    if unusable is not None:
        print(f"Embedding cache not used ({unusable}); set {CACHE_DIR_ENV} to a writable folder.",
              file=sys.stderr)
        vectors = embed(texts, encoder)
        return (vectors, None) if report else vectors
    if path.exists():
        print(f"Embedding cache {path} is unusable ({problem}); recomputing it.", file=sys.stderr)
    vectors = embed(texts, encoder)
    _save(path, key, vectors)
    return (vectors, CacheUse(path, False)) if report else vectors


def embedding_cache_path(
    texts: Sequence[str], encoder: SentenceTransformer, cache_dir: str | os.PathLike | None = None
) -> Path:
    """The file ``embed_cached(texts, encoder, cache_dir)`` reads and writes."""
    return _path_for(_cache_key(check_texts(texts, name="texts"), encoder), cache_dir)


def embedding_dimension(encoder: SentenceTransformer) -> int | None:
    """The encoder's vector size (None if it cannot say)."""
    # sentence-transformers 6 renamed the method; older releases have only the old name.
    method = getattr(encoder, "get_embedding_dimension", None) or encoder.get_sentence_embedding_dimension
    return method()


def _path_for(key: dict, cache_dir: str | os.PathLike | None) -> Path:
    folder = Path(cache_dir) if cache_dir is not None else cache_root() / "embeddings"
    return folder / f"{key['model'][:12]}-{key['texts'][:20]}.npz"


def _cache_key(texts: list[str], encoder: SentenceTransformer) -> dict:
    return {
        "format": _FORMAT,
        "model": model_fingerprint(encoder),
        "texts": texts_digest(texts),
        "n": len(texts),
    }


def texts_digest(texts: list[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8")
        # The length first, so ["ab", "c"] and ["a", "bc"] differ.
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def model_fingerprint(encoder: SentenceTransformer) -> str:
    """SHA-256 of what decides the embeddings: modules, settings, tokenizer, weights.

    Hashing every weight byte would cost ~0.1 s for all-MiniLM-L6-v2, more
    than a cache hit should; a tensor's shape, dtype, sum and 1024 evenly
    spaced values change with any retraining or edit, at a few milliseconds.
    """
    digest = hashlib.sha256()
    settings = {
        "modules": [type(module).__name__ for module in encoder],
        "max_seq_length": encoder.max_seq_length,
        "tokenizer": [type(encoder.tokenizer).__name__, len(encoder.tokenizer)],
        "configs": [getattr(m, "get_config_dict", dict)() for m in encoder],
    }
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    for name, tensor in encoder.state_dict().items():
        values = tensor.detach().cpu().reshape(-1).float().numpy()  # no copy for float32 weights
        step = max(1, values.size // _SAMPLES_PER_TENSOR)
        total = float(np.sum(values, dtype=np.float64))
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}{total!r}".encode())
        digest.update(values[::step].tobytes())
    return digest.hexdigest()


def _load(path: Path, key: dict, n: int, dim: int | None) -> tuple[np.ndarray | None, str | None]:
    """``(embeddings, None)`` if ``path`` is a valid cache for ``key``, else ``(None, why)``."""
    if not path.is_file():
        return None, "missing"
    try:
        with np.load(path, allow_pickle=False) as data:
            stored_key = json.loads(str(data["key"]))
            vectors = data["embeddings"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        return None, f"unreadable: {type(exc).__name__}"
    stored_vectors = stored_key.pop("vectors", None) if isinstance(stored_key, dict) else None
    if stored_key != key:
        return None, "stale: made from another model or other texts"
    if vectors.dtype != np.float32 or vectors.ndim != 2 or vectors.shape[0] != n:
        return None, f"wrong array: {vectors.dtype} {vectors.shape}, expected float32 ({n}, dim)"
    if dim is not None and vectors.shape[1] != dim:
        return None, f"wrong dimension {vectors.shape[1]}, expected {dim}"
    try:
        check_unit_rows(vectors, name="cached embeddings")
    except ValueError as exc:
        return None, str(exc).split(" (call")[0]
    if stored_vectors != _vectors_digest(vectors):
        return None, "corrupt: the vectors do not match their checksum"
    return vectors, None


def _vectors_digest(vectors: np.ndarray) -> str:
    # The array's own buffer: the same digest as .tobytes(), without a copy of the matrix (150 MB at 100k x 384).
    return hashlib.sha256(np.ascontiguousarray(vectors).data).hexdigest()


def _save(path: Path, key: dict, vectors: np.ndarray) -> None:
    """Write atomically (temporary file beside ``path``, fsync, rename), under the cache folder's lock."""
    stored_key = dict(key, vectors=_vectors_digest(vectors))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with folder_lock(path.parent / ".lock"):
            # Every writer holds this lock while it writes: a temporary file now is a killed writer's.
            remove_stale(path.parent, every=True)
            write_file_atomically(
                path, lambda f: np.savez(f, key=np.array(json.dumps(stored_key, sort_keys=True)), embeddings=vectors)
            )
    except OSError as exc:  # a read-only or full disk: the embeddings are still good
        warnings.warn(f"could not write the embedding cache {path}: {exc}", stacklevel=3)
