"""An index of files and folders that keeps up with them: only what changed is chunked and embedded.

``update_folder_index(folder, paths, encoder)`` brings the index in ``folder`` up to date with the files
under ``paths`` and returns it (``FolderIndex``): each file's bytes are hashed (notebook 12's
``file_digest``); a file whose digest is the one the index recorded keeps its chunks as they are; new
and changed files are read, chunked and their chunks keyed by ``content_key`` (the model and the
chunk's text), and only keys the index does not hold yet are embedded (``update_vectors``); deleted
files' chunks are gone from the new index. Changing the model or the chunk sizes re-chunks every file
(and, for a new model, embeds everything: its keys are new).

The folder::

    .lock               held (``flock``) by the one run updating the index; others wait
    CURRENT             {"generation": "gen-000012", "state_sha256": ...}, replaced atomically
    gen-000012/
        state.json      the files (source, digest, rows), each chunk's key and section, the settings
        index/          ``index_store.save_index``'s folder: vectors, texts, chunk table, manifest

An update writes a whole new generation beside the current one (into a temporary folder, flushed,
renamed to its final name), then switches ``CURRENT`` to it in one atomic rename, then deletes the
old one. A run killed at any moment (``kill -9``) leaves ``CURRENT`` naming the old generation or
the new one, both complete; the next run removes whatever half-written folder is left. Two runs at
once take turns on the lock. Everything read is checked: ``CURRENT``'s digest of ``state.json``,
and the index's own manifest with a SHA-256 of every byte (``open_index(verify=True)``); an index
that fails a check is said to be unreadable, in one line naming the problem, and built again from
the files (nothing is lost: the files are the source).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sentence_transformers import SentenceTransformer

from rag_helpers.incremental import content_key, file_digest, update_vectors

from .._infra.cache import folder_lock, fsync_file, fsync_folder, temporary_name, write_file_atomically
from .chunking import DEFAULT_CHUNK_TOKENS, DEFAULT_OVERLAP, Chunk, check_chunk_sizes, chunk_documents, chunk_sections
from .documents import (
    MAX_FILE_BYTES,
    DocumentError,
    LoadResult,
    Skipped,
    list_files,
    load_bytes,
)
from .embedding_cache import embedding_dimension, model_fingerprint
from .embeddings import embed
from .index_store import CorruptIndexError, open_index, save_index

__all__ = ["FolderIndex", "update_folder_index", "open_folder_index", "IndexUnreadableError"]

FORMAT = 1
CURRENT = "CURRENT"
_STATE = "state.json"
_INDEX = "index"
_GENERATION = re.compile(r"gen-(\d{6})")
_TEMPORARY = "gen"  # temporary_name("gen"): .gen.tmp-PID-RANDOM
_MAX_CURRENT_BYTES = 4096
_HEX64 = re.compile(r"[0-9a-f]{64}")


class IndexUnreadableError(ValueError):
    """The folder's index failed a check (which file, and what is wrong, in the message)."""


@dataclass
class FolderIndex:
    """The chunks of the indexed files and their vectors, as the last update left them.

    chunks : n ``Chunk`` (text, source, span, line, page), in file order.
    sections : n heading titles (or None), the section each chunk starts under.
    keys : n ``content_key``s, 64 hex digits each.
    vectors : (n, dim) float32 unit rows, in memory.
    embedded, reused, removed : chunks embedded by this update, chunks whose vectors came from the
        index, chunks of the old index that are gone (deleted or changed files).
    """

    folder: Path
    chunks: list[Chunk]
    sections: list[str | None]
    keys: list[str]
    vectors: np.ndarray
    embedded: int = 0
    reused: int = 0
    removed: int = 0
    skipped: LoadResult = field(default_factory=LoadResult, repr=False)
    name: str = ""  # the folder as the user wrote it, for the report line

    def __len__(self) -> int:
        return len(self.chunks)

    def __str__(self) -> str:
        return (f"Index {self.name or self.folder}: {len(self)} chunks ({self.embedded} embedded now, "
                f"{self.reused} reused, {self.removed} removed)")


@dataclass
class _Generation:
    name: str
    state: dict
    vectors: np.ndarray  # (n, dim) float32, memory-mapped
    index: object  # the DiskIndex


def update_folder_index(
    folder: str | os.PathLike,
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    encoder: SentenceTransformer,
    *,
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
    overlap: int = DEFAULT_OVERLAP,
    max_bytes: int | None = MAX_FILE_BYTES,
) -> FolderIndex:
    """Bring the index in ``folder`` up to date with the files under ``paths``; return it.

    ``paths``: files and folders, read as ``load_documents`` reads them (same names, same skips:
    see ``FolderIndex.skipped``). The first run builds the index (``folder`` is created); every
    later run chunks and embeds only what changed. Raises ``DocumentError`` / ``FileNotFoundError``
    as ``load_documents`` does, and ``NotADirectoryError`` if ``folder`` is a file.
    """
    name = os.fspath(folder)
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"the index folder {name!r} is a file: give a folder (it is created if missing)")
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not paths:
        raise ValueError("paths is empty: give at least one file or folder")
    for path in paths:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"paths must be file or folder paths, got {type(path).__name__} {path!r}")
    chunk_tokens, overlap = check_chunk_sizes(chunk_tokens, overlap, encoder.max_seq_length)
    settings = {"model": model_fingerprint(encoder), "chunk_tokens": chunk_tokens, "overlap": overlap}
    folder.mkdir(parents=True, exist_ok=True)
    with folder_lock(folder / ".lock", wait_message=f"Index {name}: another run is updating it; waiting"):
        _remove_leftovers(folder)
        try:
            old = _read_current(folder)
        except IndexUnreadableError as exc:
            print(f"Index {name}: {exc}; building it again from the files", file=sys.stderr)
            old = None
        update = _update(folder, old, paths, encoder, settings, max_bytes)
        update.name = name
        return update


def open_folder_index(folder: str | os.PathLike) -> FolderIndex:
    """The index in ``folder`` as the last update left it, without looking at the files (read-only)."""
    name = os.fspath(folder)
    folder = Path(folder)
    with folder_lock(folder / ".lock", shared=True):
        old = _read_current(folder)
        if old is None:
            raise FileNotFoundError(f"no index in {name!r}: build one with update_folder_index (--index)")
        chunks, sections, keys = _old_rows(old, range(len(old.vectors)))
        return FolderIndex(folder, chunks, sections, keys, np.array(old.vectors), reused=len(chunks), name=name)


def _update(folder: Path, old: _Generation | None, paths: list, encoder: SentenceTransformer,
            settings: dict, max_bytes: int | None) -> FolderIndex:
    same = old is not None and all(old.state[key] == value for key, value in settings.items())
    old_files = {f["source"]: f for f in old.state["files"]} if same else {}

    result = LoadResult()
    chunks: list[Chunk] = []
    sections: list[str | None] = []
    keys: list[str] = []
    files: list[dict] = []
    for path, source in list_files(paths, result, max_bytes=max_bytes):
        try:
            data = path.read_bytes()
        except OSError as err:
            _skip(result, Skipped(source, "unreadable", f"{type(err).__name__}: {err.strerror or err}"))
            continue
        digest = file_digest(data)
        record = old_files.get(source)
        if record is not None and record["digest"] == digest:  # unchanged: its chunks as they were
            new = _old_rows(old, range(*record["rows"]))
        else:
            new = _chunk_file(source, path.suffix.lower(), data, result, encoder, settings)
            if new is None:
                continue
        files.append({"source": source, "digest": digest, "rows": [len(chunks), len(chunks) + len(new[0])]})
        chunks += new[0]
        sections += new[1]
        keys += new[2]
    if not chunks:
        what = ", ".join(repr(os.fspath(p)) for p in paths)
        raise DocumentError(what, "no documents could be loaded",
                            result.report().replace("\n", "; ") or "nothing in it")

    old_keys = old.state["keys"] if old is not None else []
    if same and [(f["source"], f["digest"]) for f in files] == [(f["source"], f["digest"]) for f in old.state["files"]]:
        # Nothing changed: no embedding, no writing.
        return FolderIndex(folder, chunks, sections, keys, np.array(old.vectors), reused=len(chunks),
                           skipped=result)
    if old is not None:
        old_vectors = old.vectors
    else:
        old_vectors = np.empty((0, embedding_dimension(encoder) or 1), np.float32)
    vectors, _ = update_vectors(old_keys, old_vectors, keys, [c.text for c in chunks],
                                lambda texts: embed(texts, encoder))
    known = set(old_keys)
    embedded = sum(key not in known for key in keys)
    kept = set(keys)
    removed = sum(key not in kept for key in old_keys)
    state = {"format": FORMAT, **settings, "files": files, "keys": keys, "sections": sections}
    _write_generation(folder, old, vectors, chunks, state)
    return FolderIndex(folder, chunks, sections, keys, vectors, embedded=embedded,
                       reused=len(keys) - embedded, removed=removed, skipped=result)


def _skip(result: LoadResult, problem: Skipped) -> None:
    if problem.path in result.named:  # a file the user named: an error, as load_documents says it
        raise DocumentError(problem.path, problem.reason, problem.detail)
    result.skipped.append(problem)


def _chunk_file(source: str, suffix: str, data: bytes, result: LoadResult, encoder: SentenceTransformer,
                settings: dict) -> tuple[list[Chunk], list[str | None], list[str]] | None:
    """One new or changed file: its chunks, their sections and keys; None if it cannot be loaded."""
    loaded = LoadResult()
    problem = load_bytes(source, suffix, data, loaded)
    result.skipped += loaded.skipped  # PDF pages without text
    if problem is not None:
        _skip(result, problem)
        return None
    chunks = chunk_documents(loaded.documents, encoder, settings["chunk_tokens"], settings["overlap"])
    keys = [content_key(c.text, settings["model"]) for c in chunks]
    return chunks, chunk_sections(loaded.documents, chunks), keys


def _old_rows(old: _Generation, rows: range) -> tuple[list[Chunk], list[str | None], list[str]]:
    chunks = [old.index.chunk(i) for i in rows]
    return chunks, old.state["sections"][rows.start:rows.stop], old.state["keys"][rows.start:rows.stop]


# ------------------------------------------------------------------ on disk


def _remove_leftovers(folder: Path) -> None:
    """Under the lock, nothing else writes here: any temporary or superseded generation is a leftover."""
    current = _current_name(folder)
    for path in folder.iterdir():
        leftover = path.name.startswith(f".{_TEMPORARY}.tmp-") or path.name.startswith(f".{CURRENT}.tmp-")
        superseded = _GENERATION.fullmatch(path.name) and path.name != current
        if (leftover or superseded) and not path.is_symlink():
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def _current_name(folder: Path) -> str | None:
    try:
        pointer = json.loads((folder / CURRENT).read_bytes()[:_MAX_CURRENT_BYTES])
        name = pointer["generation"]
        return name if isinstance(name, str) and _GENERATION.fullmatch(name) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _read_current(folder: Path) -> _Generation | None:
    """The current generation, checked; None if there is no index yet. Raises ``IndexUnreadableError``."""
    path = folder / CURRENT
    if not path.exists():
        if any(_GENERATION.fullmatch(p.name) for p in folder.iterdir()):
            raise IndexUnreadableError(f"{CURRENT} is missing")
        return None
    try:
        raw = path.read_bytes()
        if len(raw) > _MAX_CURRENT_BYTES:
            raise ValueError(f"{len(raw)} bytes, more than a pointer")
        pointer = json.loads(raw)
        name, digest = pointer["generation"], pointer["state_sha256"]
        if not (isinstance(name, str) and _GENERATION.fullmatch(name)):
            raise ValueError(f"generation {name!r} is not a generation folder's name")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IndexUnreadableError(f"{path} is unreadable ({exc})") from None
    generation = folder / name
    try:
        state_bytes = (generation / _STATE).read_bytes()
    except OSError as exc:
        raise IndexUnreadableError(f"{generation / _STATE} cannot be read ({exc.strerror or exc})") from None
    if hashlib.sha256(state_bytes).hexdigest() != digest:
        raise IndexUnreadableError(f"{generation / _STATE} was altered (its SHA-256 is not the one {CURRENT} records)")
    try:
        state = json.loads(state_bytes)
        _check_state(state)
        index = open_index(generation / _INDEX, verify=True)
    except (ValueError, KeyError, TypeError, FileNotFoundError, CorruptIndexError) as exc:
        raise IndexUnreadableError(f"{generation}: {exc}") from None
    if len(index) != len(state["keys"]):
        raise IndexUnreadableError(f"{generation}: {len(index)} vectors for {len(state['keys'])} chunks")
    return _Generation(name, state, index.vectors, index)


def _check_state(state: dict) -> None:
    if state.get("format") != FORMAT:
        raise ValueError(f"format {state.get('format')!r}, this code reads {FORMAT}")
    keys, sections, files = state["keys"], state["sections"], state["files"]
    if not (isinstance(keys, list) and all(isinstance(k, str) and _HEX64.fullmatch(k) for k in keys)):
        raise ValueError("keys are not a list of 64-hex-digit keys")
    if not (isinstance(sections, list) and len(sections) == len(keys)
            and all(s is None or isinstance(s, str) for s in sections)):
        raise ValueError("sections do not match the keys")
    expected = 0
    for record in files:
        first, stop = record["rows"]
        if not (isinstance(record["source"], str) and isinstance(record["digest"], str)
                and first == expected and stop >= first):
            raise ValueError(f"the file record {record!r} is malformed")
        expected = stop
    if expected != len(keys):
        raise ValueError(f"the files cover {expected} rows, the keys {len(keys)}")


def _write_generation(folder: Path, old: _Generation | None, vectors: np.ndarray, chunks: list[Chunk],
                      state: dict) -> None:
    """Write the new generation whole, then switch CURRENT to it; the old one is removed last."""
    number = int(old.name[4:]) + 1 if old is not None else 1 + max(
        (int(m.group(1)) for p in folder.iterdir() if (m := _GENERATION.fullmatch(p.name))), default=0)
    name = f"gen-{number:06d}"
    tmp = folder / temporary_name(_TEMPORARY)
    tmp.mkdir()
    try:
        save_index(tmp / _INDEX, vectors, chunks, model=state["model"], codes=False)
        state_bytes = json.dumps(state, separators=(",", ":")).encode()
        (tmp / _STATE).write_bytes(state_bytes)
        fsync_file(tmp / _STATE)
        fsync_folder(tmp)
        os.rename(tmp, folder / name)
        tmp = None
        fsync_folder(folder)
        pointer = {"format": FORMAT, "generation": name, "state_sha256": hashlib.sha256(state_bytes).hexdigest()}
        write_file_atomically(folder / CURRENT, lambda f: f.write(json.dumps(pointer).encode()))
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    if old is not None:
        shutil.rmtree(folder / old.name, ignore_errors=True)
