"""An index on disk: the document vectors and their chunk table in one folder, memory-mapped back.

Embedding a corpus is slow; its vectors should be computed once and kept.
A million 384-d float32 vectors is 1.5 GB: more than a laptop wants to hold
in memory next to a language model. So the index lives in a folder of
``.npy`` files (``np.save``), and ``open_index`` maps them with
``np.load(path, mmap_mode="r")``: nothing is read until a search touches it,
and a search reads the matrix block by block, handing each block's pages back
to the operating system when it is done with them (``madvise``), so the
process never holds more than a block or two of the file.

The folder::

    manifest.json       what the files must be, and what they were made from
    vectors.npy         (n, d) float32, unit rows
    codes.npy           (n, ceil(d/8)) uint8, binary_codes(vectors)  (optional)
    text_bytes.npy      (total,) uint8: every text in UTF-8, one after another
    text_offsets.npy    (n + 1,) int64: text i is text_bytes[offsets[i]:offsets[i + 1]]
    source_bytes.npy    (total,) uint8: the distinct source names, the same way
    source_offsets.npy  (n_sources + 1,) int64
    chunk_table.npy     (n, 5) int64: source id, start, end, line, page (-1: none)

Nothing in the folder is trusted: arrays load with ``allow_pickle=False``
(data, never code); every file's header (dtype, shape, order) and exact size
is checked against the manifest before it is mapped, and every byte of every
file is hashed (SHA-256) against it, so one changed row in the middle of
``vectors.npy`` is caught on open. That costs about 0.1 s at 100,000 x 384
(150 MB, measured with ``tests/test_crash_safety.py``'s timing and on a
2-core CPU); ``verify=False`` trades it for a digest of each file's first
and last 64 KiB only (a swapped file is still caught, an edited row in the
middle is not). Files are only ever read under
their fixed names, inside the folder given (no path comes from the manifest,
and a link pointing out of the folder is refused). A problem raises
``CorruptIndexError`` saying which file and what is wrong, never a search on
bad data. The manifest also records a fingerprint of the model and of the
texts: ``open_index(folder, documents=..., encoder=...)`` raises
``StaleIndexError`` when either changed, and ``load_or_build_index`` builds
the index again instead.

Writing is old-or-new, never neither, never a mix, across processes and
``kill -9``:

1. a writer holds an exclusive ``fcntl.flock`` on ``folder/.lock`` (readers
   hold it shared while they check and map the files), so two writers take
   turns and the folder ends up as one writer's complete index;
2. it writes every new file under a temporary name (``.NAME.tmp-PID-...``)
   and flushes it to disk; the old index is untouched until then;
3. it commits by writing ``.journal.json`` (atomically: temporary file,
   fsync, rename): the new manifest and which temporary file becomes which;
4. it renames the files into place, writes the manifest, deletes the journal.

A writer killed before step 3 leaves the old index and some temporary files;
one killed during step 4 leaves the journal, and the next writer or reader
finishes the renames from it (rolls forward) before anything is read. Whoever
next holds the lock removes temporary files (no writer can be at work on
them: the lock proves it), and ``.building`` folders of ``build_index`` runs
whose process is gone.
"""
from __future__ import annotations

import hashlib
import json
import math
import contextlib
import fcntl
import mmap
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sentence_transformers import SentenceTransformer

from .embedding_cache import model_fingerprint, texts_digest
from .._infra.cache import (
    fsync_file,
    fsync_folder,
    hold_owner_lock,
    is_stale,
    owner_pid,
    sha256_of,
    temporary_name,
    write_file_atomically,
)
from .._infra.validation import as_float_array, check_k, check_texts, describe_rows
from .blocked_search import SCORE_BLOCK_BYTES, search_blocked
from .chunking import Chunk
from .embeddings import embed
from .quantization import binary_codes, search_binary
from .scoring import prepare_query_and_docs
from .vectors import check_unit_rows

__all__ = [
    "DiskIndex",
    "CorruptIndexError",
    "StaleIndexError",
    "save_index",
    "open_index",
    "build_index",
    "load_or_build_index",
    "MANIFEST",
]

FORMAT = 1
MANIFEST = "manifest.json"
_VECTORS = "vectors.npy"
_CODES = "codes.npy"
_TABLE_FILES = ("text_bytes.npy", "text_offsets.npy", "source_bytes.npy", "source_offsets.npy", "chunk_table.npy")
_ALL_FILES = (_VECTORS, _CODES, *_TABLE_FILES)
_LOCK = ".lock"
_JOURNAL = ".journal.json"
_BUILDING = "building"  # build_index's working folders: .building.tmp-PID-RANDOM
_DIGEST_BYTES = 64 * 2**10  # hashed at each end of every file on open
_MAX_MANIFEST_BYTES = 2**20
_EMBED_BATCH = 8192  # texts embedded (and written) at a time by build_index


class CorruptIndexError(ValueError):
    """The folder is not a readable index: a file is missing, truncated, of the wrong shape or dtype, or altered."""


class StaleIndexError(ValueError):
    """The index was made from other texts or another model than the ones given."""


@dataclass
class DiskIndex:
    """An index opened from a folder: the vectors memory-mapped, the chunk table read on demand.

    ``vectors`` : (n, d) float32, a read-only memory map of vectors.npy.
    ``codes`` : (n, ceil(d/8)) uint8 binary codes, or None.
    """

    folder: Path
    manifest: dict
    vectors: np.ndarray
    codes: np.ndarray | None
    _text_bytes: np.ndarray
    _text_offsets: np.ndarray
    _source_bytes: np.ndarray
    _source_offsets: np.ndarray
    _table: np.ndarray

    def __len__(self) -> int:
        return self.vectors.shape[0]

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def text(self, i: int) -> str:
        """The text of chunk ``i``."""
        i = self._check_row(i)
        return _decode(self._text_bytes, self._text_offsets, i, self.folder / "text_bytes.npy")

    def chunk(self, i: int) -> Chunk | None:
        """Chunk ``i`` with its source and place, or None if the index was saved from plain texts."""
        i = self._check_row(i)
        source_id, start, end, line, page = (int(v) for v in self._table[i])
        if source_id < 0:
            return None
        source = _decode(self._source_bytes, self._source_offsets, source_id, self.folder / "source_bytes.npy",
                         errors="surrogatepass")
        return Chunk(self.text(i), source, start, end, line, None if page < 0 else page)

    def search(
        self, query_vecs: np.ndarray, k: int, *, block_bytes: int = SCORE_BLOCK_BYTES
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact search over the memory-mapped vectors: ``rag_helpers.search``'s contract and results.

        Reads the file block by block and releases each block's pages once it
        is scored, so the memory used stays a block or two whatever the file size.
        """
        q, docs = prepare_query_and_docs(query_vecs, self.vectors)
        k = check_k(k, len(self))
        # The very blocks and BLAS calls of rag_helpers.search: the same scores, bit for bit.
        indices, scores = search_blocked(np.atleast_2d(q), docs, k, block_bytes, after_block=_PageRelease(self.vectors))
        return (indices[0], scores[0]) if q.ndim == 1 else (indices, scores)

    def search_binary(
        self, query_vecs: np.ndarray, k: int, shortlist: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``search_binary`` with the codes in memory and the float vectors read from disk (shortlist rows only)."""
        if self.codes is None:
            raise ValueError(f"the index in {self.folder} was saved without binary codes (save_index(..., codes=True))")
        return search_binary(query_vecs, self.codes, self.vectors, k, shortlist)

    def _check_row(self, i: int) -> int:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"row must be an integer, got {type(i).__name__}")
        if not 0 <= i < len(self):
            raise IndexError(f"row {i} is out of range: the index has {len(self)} chunks")
        return int(i)


class _PageRelease:
    """Tells the operating system it may drop a memory map's pages once a block is scored.

    A page of a mapped file that was read stays in the process's resident
    memory until the kernel needs the room; ``MADV_DONTNEED`` lets it go at
    once (the file's data stays in the page cache: reading it again is cheap).
    Without ``madvise`` (Windows, or a NumPy without ``memmap._mmap``) this
    does nothing and the resident memory grows up to the file's size.
    """

    def __init__(self, array: np.ndarray) -> None:
        self.mm = getattr(array, "_mmap", None)
        if self.mm is None or not hasattr(self.mm, "madvise") or not hasattr(mmap, "MADV_DONTNEED"):
            self.mm = None
            return
        # np.memmap maps the file from the multiple of ALLOCATIONGRANULARITY
        # just below the array's offset (the .npy header's length).
        self.data_start = getattr(array, "offset", 0) % mmap.ALLOCATIONGRANULARITY
        self.row_bytes = array.shape[1] * array.itemsize
        self.size = len(self.mm)

    def __call__(self, start: int, stop: int) -> None:
        if self.mm is None:
            return
        first = self.data_start + start * self.row_bytes
        last = min(self.size, self.data_start + stop * self.row_bytes)
        first -= first % mmap.PAGESIZE  # madvise works on whole pages
        try:
            self.mm.madvise(mmap.MADV_DONTNEED, first, last - first)
        except (OSError, ValueError):  # advice only: never worth failing a search
            pass


# --------------------------------------------------------------------- saving
def save_index(
    folder: str | os.PathLike,
    vectors: np.ndarray,
    documents: Sequence[Chunk] | Sequence[str],
    *,
    model: str,
    codes: bool = True,
) -> Path:
    """Write an index: the vectors, the chunk table and the manifest.

    folder : created if missing; an index already there is replaced as a whole: readers, and a
        kill at any moment, see the old index or the new one; writers at once take turns
        (the folder ends up holding the last one's). Holds a ``.lock`` file from then on.
    vectors : (n, d) float, unit rows, one per document (stored as float32).
    documents : the n ``Chunk`` objects (or plain strings) the vectors were made from.
    model : the encoder's fingerprint (``build_index`` passes it), stored to detect staleness.
    codes : also store ``binary_codes(vectors)`` for ``DiskIndex.search_binary``.
    """
    return _save(Path(folder), vectors, documents, model=model, codes=codes)


def _save(folder: Path, vectors: np.ndarray, documents, *, model: str, codes: bool,
          vectors_file: Path | None = None) -> Path:
    """``save_index``; ``vectors_file``: a .npy of ``vectors`` already on disk in ``folder``, moved in, not copied."""
    vectors = as_float_array(vectors, name="vectors", ndims=(2,))
    check_unit_rows(vectors, name="vectors")
    texts, table_parts, table_digest = _chunk_table(documents)
    if len(texts) != len(vectors):
        raise ValueError(f"{len(vectors)} vectors but {len(texts)} documents: one vector per document")
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {_VECTORS: vectors.astype(np.float32, copy=False), **dict(zip(_TABLE_FILES, table_parts))}
    if codes:
        arrays[_CODES] = binary_codes(vectors)
    with _lock(folder, shared=False) as held:
        if not held:
            raise PermissionError(f"cannot write an index in {folder}: {folder / _LOCK} cannot be created")
        _recover(folder)
        written: dict[str, str] = {}
        committed = False
        try:
            for name, array in arrays.items():
                tmp = folder / temporary_name(name, suffix=".tmp")
                written[name] = tmp.name
                if name == _VECTORS and vectors_file is not None:
                    os.replace(vectors_file, tmp)  # written and flushed by build_index
                    fsync_file(tmp)
                else:
                    with open(tmp, "xb") as f:
                        np.save(f, array, allow_pickle=False)
                        f.flush()
                        os.fsync(f.fileno())
            manifest = {
                "format": FORMAT,
                "n": int(len(vectors)),
                "dim": int(vectors.shape[1]),
                "model": str(model),
                "texts": texts_digest(texts),
                "table": table_digest,
                "files": {name: _file_record(folder / tmp) for name, tmp in written.items()},
            }
            journal = {"manifest": manifest, "install": written,
                       "remove": [name for name in _ALL_FILES if name not in arrays]}
            # The commit point: from the moment the journal is in place, the new index is the index.
            tmp = folder / temporary_name(_JOURNAL, suffix=".tmp")
            with open(tmp, "xb") as f:
                f.write(json.dumps(journal, indent=1).encode())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, folder / _JOURNAL)
            committed = True
        finally:
            if not committed:  # the old index stands: drop what was written
                for name in (*written.values(), tmp.name):
                    with contextlib.suppress(FileNotFoundError):
                        (folder / name).unlink()
        fsync_folder(folder)
        _roll_forward(folder, journal)
    return folder


def _file_record(path: Path) -> dict:
    return {**_quick_digest(path), "sha256": sha256_of(path)}


def _roll_forward(folder: Path, journal: dict) -> None:
    """Install a committed write: rename its files into place, write its manifest, delete the journal.

    Safe to repeat after a kill at any point: a temporary file that is gone
    was renamed already.
    """
    for name, tmp in journal["install"].items():
        if (folder / tmp).exists():
            os.replace(folder / tmp, folder / name)
    for name in journal["remove"]:
        with contextlib.suppress(FileNotFoundError):
            (folder / name).unlink()
    write_file_atomically(folder / MANIFEST, lambda f: f.write(json.dumps(journal["manifest"], indent=1).encode()))
    (folder / _JOURNAL).unlink()
    fsync_folder(folder)


def _read_journal(folder: Path) -> dict:
    """The journal of an interrupted write, checked: it may only rename our temporary files to our file names."""
    path = folder / _JOURNAL
    try:
        journal = json.loads(path.read_bytes())
        install, remove = journal["install"], journal["remove"]
        ok = (isinstance(journal["manifest"], dict) and isinstance(install, dict) and isinstance(remove, list)
              and all(name in _ALL_FILES and isinstance(tmp, str) and tmp == Path(tmp).name
                      and tmp.startswith(f".{name}.tmp-") for name, tmp in install.items())
              and all(name in _ALL_FILES for name in remove))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CorruptIndexError(f"{path}, left by an interrupted write, cannot be read ({exc}); "
                                f"delete the folder {folder} and build the index again") from None
    if not ok:
        raise CorruptIndexError(f"{path}, left by an interrupted write, is malformed; "
                                f"delete the folder {folder} and build the index again")
    return journal


def _recover(folder: Path) -> None:
    """With the exclusive lock held: finish a killed writer's committed write, remove killed writers' leftovers."""
    if (folder / _JOURNAL).exists():
        journal = _read_journal(folder)
        try:
            _roll_forward(folder, journal)
        except OSError as exc:
            raise CorruptIndexError(f"an interrupted write to {folder} cannot be finished ({exc.strerror or exc}); "
                                    "it needs a writable folder") from None
    for path in folder.iterdir():
        if owner_pid(path) is None:
            continue
        # Under the lock every writer holds while it writes, a temporary file is a dead writer's;
        # a build's folder is in use outside the lock, so it goes only once its process is gone.
        if path.name.startswith(f".{_BUILDING}.") and not is_stale(path):
            continue
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:
            pass
        except OSError:  # a read-only folder: nothing was written in it either
            pass


@contextlib.contextmanager
def _lock(folder: Path, *, shared: bool):
    """The folder's lock: exclusive for a writer; for a reader, shared once any leftovers are dealt with.

    Yields False (no lock) only where the lock file can neither be created
    nor opened, i.e. a read-only folder without one: nothing can be writing there.
    """
    try:
        fd = os.open(folder / _LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        try:
            fd = os.open(folder / _LOCK, os.O_RDONLY)
        except OSError:
            if (folder / _JOURNAL).exists():
                _recover(folder)  # raises: it cannot be finished without writing
            yield False
            return
    try:
        if not shared:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield True
            return
        try:
            # A reader that finds the folder free tidies it on the way (the next run after a kill).
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _recover(folder)
        except BlockingIOError:
            fcntl.flock(fd, fcntl.LOCK_SH)
            if (folder / _JOURNAL).exists():  # a killed writer's, found while other readers read
                fcntl.flock(fd, fcntl.LOCK_EX)
                _recover(folder)
        fcntl.flock(fd, fcntl.LOCK_SH)  # from exclusive: a downgrade; other readers may proceed
        yield True
    finally:
        os.close(fd)


def build_index(
    folder: str | os.PathLike, documents: Sequence[Chunk] | Sequence[str], encoder: SentenceTransformer, *,
    codes: bool = True,
) -> DiskIndex:
    """Embed the documents and save them as an index in ``folder``; returns it opened.

    The vectors go to disk ``_EMBED_BATCH`` texts at a time, into a
    memory-mapped file: the whole matrix is never in memory at once.
    """
    texts, _, _ = _chunk_table(documents)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = model_fingerprint(encoder)
    for path in folder.glob(f".{_BUILDING}.tmp-*"):  # killed builds (their process is gone)
        if is_stale(path):
            shutil.rmtree(path, ignore_errors=True)
    # The vectors are embedded outside the folder's lock (that takes minutes), into a folder of
    # this process's own, locked for its life so that no other run mistakes it for a leftover.
    building = folder / temporary_name(_BUILDING)
    building.mkdir()
    owner = hold_owner_lock(building)
    try:
        first = embed(texts[:_EMBED_BATCH], encoder)
        staging = np.lib.format.open_memmap(building / _VECTORS, mode="w+", dtype=np.float32,
                                            shape=(len(texts), first.shape[1]))
        staging[: len(first)] = first
        for start in range(_EMBED_BATCH, len(texts), _EMBED_BATCH):
            staging[start : start + _EMBED_BATCH] = embed(texts[start : start + _EMBED_BATCH], encoder)
        staging.flush()
        _save(folder, staging, documents, model=model, codes=codes, vectors_file=building / _VECTORS)
        del staging
    finally:
        os.close(owner)
        shutil.rmtree(building, ignore_errors=True)
    return open_index(folder)


def load_or_build_index(
    folder: str | os.PathLike, documents: Sequence[Chunk] | Sequence[str], encoder: SentenceTransformer, *,
    codes: bool = True,
) -> DiskIndex:
    """The index in ``folder`` if it is sound and was made from these documents with this encoder; else a new one.

    When it builds again it says why, in one line on stderr (missing,
    corrupt: which file and what, or stale).
    """
    try:
        return open_index(folder, documents=documents, encoder=encoder)
    except FileNotFoundError:
        pass
    except (CorruptIndexError, StaleIndexError) as exc:
        print(f"Rebuilding the index in {folder}: {exc}", file=sys.stderr)
    return build_index(folder, documents, encoder, codes=codes)


# -------------------------------------------------------------------- opening
def open_index(
    folder: str | os.PathLike,
    *,
    documents: Sequence[Chunk] | Sequence[str] | None = None,
    encoder: SentenceTransformer | None = None,
    model: str | None = None,
    verify: bool = True,
) -> DiskIndex:
    """Open the index in ``folder`` after checking it; the arrays are memory-mapped, not read.

    documents, encoder (or model, its fingerprint) : when given, the index
        must have been made from exactly these texts (and this chunk table, if
        Chunks are given) with this model, else ``StaleIndexError``.
    verify : hash every byte of every file against the manifest (reads the whole index once,
        about 0.1 s per 150 MB); False checks each file's size and first and last 64 KiB only.

    Raises ``FileNotFoundError`` if there is no index (no manifest), and
    ``CorruptIndexError`` naming the file and the problem if it is unsound.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no index folder at {folder}")
    if not (folder / MANIFEST).exists() and not (folder / _JOURNAL).exists():
        raise FileNotFoundError(f"no index in {folder}: {MANIFEST} is missing")  # and no lock file left in it
    with _lock(folder, shared=True):
        # Checked and mapped under the lock: a writer waits, and what is mapped stays
        # this version of the files even after a later writer renames new ones over them.
        index = _open_checked(folder, verify)
    manifest, n = index.manifest, len(index)
    if encoder is not None:
        model = model_fingerprint(encoder)
    if model is not None and model != manifest["model"]:
        raise StaleIndexError(f"the index in {folder} was made with another model (or other model settings)")
    if documents is not None:
        texts, _, table_digest = _chunk_table(documents)
        if len(texts) != n or texts_digest(texts) != manifest["texts"]:
            raise StaleIndexError(f"the index in {folder} was made from other texts ({n} then, {len(texts)} now)")
        if _has_chunks(documents) and table_digest != manifest["table"]:
            raise StaleIndexError(f"the index in {folder} has the same texts but other sources or places")
    return index


def _open_checked(folder: Path, verify: bool) -> DiskIndex:
    """The index in ``folder`` with every file checked against the manifest (see ``open_index``), mapped."""
    manifest = _read_manifest(folder)
    n, dim = manifest["n"], manifest["dim"]
    expected = {
        _VECTORS: (np.dtype(np.float32), (n, dim)),
        "text_offsets.npy": (np.dtype(np.int64), (n + 1,)),
        "chunk_table.npy": (np.dtype(np.int64), (n, 5)),
        "text_bytes.npy": (np.dtype(np.uint8), None),
        "source_bytes.npy": (np.dtype(np.uint8), None),
        "source_offsets.npy": (np.dtype(np.int64), None),
    }
    if _CODES in manifest["files"]:
        expected[_CODES] = (np.dtype(np.uint8), (n, math.ceil(dim / 8)))
    missing = set(expected) - set(manifest["files"])
    if missing:
        raise CorruptIndexError(f"{folder / MANIFEST} does not list {', '.join(sorted(missing))}")
    arrays = {name: _open_array(folder, name, dtype, shape, manifest["files"][name], verify)
              for name, (dtype, shape) in expected.items()}
    index = DiskIndex(
        folder, manifest, arrays[_VECTORS], arrays.get(_CODES),
        arrays["text_bytes.npy"], _check_offsets(arrays, "text", folder),
        arrays["source_bytes.npy"], _check_offsets(arrays, "source", folder), arrays["chunk_table.npy"],
    )
    _check_table(index)
    return index


def _read_manifest(folder: Path) -> dict:
    path = _inside(folder, MANIFEST)
    if not path.exists():
        raise FileNotFoundError(f"no index in {folder}: {MANIFEST} is missing")
    if path.stat().st_size > _MAX_MANIFEST_BYTES:
        raise CorruptIndexError(f"{path} is {path.stat().st_size:,} bytes: not a manifest")
    try:
        manifest = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptIndexError(f"{path} is not valid JSON: {exc}") from None
    fields = {"format": int, "n": int, "dim": int, "model": str, "texts": str, "table": str, "files": dict}
    if not isinstance(manifest, dict):
        raise CorruptIndexError(f"{path} does not hold a JSON object")
    for key, kind in fields.items():
        if not isinstance(manifest.get(key), kind) or isinstance(manifest.get(key), bool):
            raise CorruptIndexError(f"{path}: field {key!r} is missing or not a {kind.__name__}")
    if manifest["format"] != FORMAT:
        raise CorruptIndexError(f"{path}: format {manifest['format']}, this version reads format {FORMAT}")
    if manifest["n"] < 1 or manifest["dim"] < 1:
        raise CorruptIndexError(f"{path}: n={manifest['n']}, dim={manifest['dim']}: both must be at least 1")
    return manifest


def _inside(folder: Path, name: str) -> Path:
    """``folder / name``, refused if it resolves (through a link) to somewhere outside the folder."""
    path = folder / name
    if path.resolve().parent != folder.resolve():
        raise CorruptIndexError(f"{path} points outside {folder} (a link?): refused")
    return path


def _open_array(folder: Path, name: str, dtype: np.dtype, shape: tuple | None, recorded: dict, verify: bool):
    """Check a .npy file's header, size and digest against what is expected, then memory-map it."""
    path = _inside(folder, name)
    if not path.is_file():
        raise CorruptIndexError(f"{path} is missing (or not a regular file)")
    size = path.stat().st_size
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                file_shape, fortran, file_dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                file_shape, fortran, file_dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f".npy format version {version}: np.save writes 1.0 or 2.0 for plain numbers")
            data_start = f.tell()
    except ValueError as exc:  # not a .npy file, or a damaged header
        raise CorruptIndexError(f"{path} is not a readable .npy file: {exc}") from None
    if file_dtype.hasobject:
        raise CorruptIndexError(f"{path} holds Python objects (dtype {file_dtype}): refused, "
                                "an index holds plain numbers")
    if file_dtype != dtype or fortran or len(file_shape) != (len(shape) if shape is not None else 1):
        raise CorruptIndexError(f"{path}: expected {dtype} {shape or '(length,)'} in C order, "
                                f"the file holds {file_dtype} {file_shape}{' in Fortran order' if fortran else ''}")
    if shape is not None and tuple(file_shape) != shape:
        raise CorruptIndexError(f"{path}: expected shape {shape} (from {MANIFEST}), the file holds {tuple(file_shape)}")
    needed = data_start + math.prod(file_shape) * file_dtype.itemsize
    if size != needed:
        what = "truncated" if size < needed else "longer than its header says"
        raise CorruptIndexError(f"{path} is {what}: {size:,} bytes, its header and shape need {needed:,}")
    quick = _quick_digest(path)
    if not isinstance(recorded, dict) or any(recorded.get(key) != value for key, value in quick.items()):
        raise CorruptIndexError(f"{path} is not the file {MANIFEST} describes (its size or digest differ)")
    if verify and sha256_of(path) != recorded.get("sha256"):
        raise CorruptIndexError(f"{path}: its SHA-256 differs from the one in {MANIFEST}")
    if math.prod(file_shape) == 0:
        return np.zeros(file_shape, dtype=file_dtype)  # an empty array cannot be memory-mapped
    return np.load(path, mmap_mode="r", allow_pickle=False)


def _check_offsets(arrays: dict, kind: str, folder: Path) -> np.ndarray:
    offsets, blob = arrays[f"{kind}_offsets.npy"], arrays[f"{kind}_bytes.npy"]
    values = np.asarray(offsets)
    if len(values) == 0 or values[0] != 0 or values[-1] != len(blob) or (np.diff(values) < 0).any():
        raise CorruptIndexError(f"{folder / f'{kind}_offsets.npy'} does not cut {kind}_bytes.npy into pieces "
                                f"(it must rise from 0 to {len(blob):,})")
    return offsets


def _check_table(index: DiskIndex) -> None:
    source, start, end, line, page = np.asarray(index._table).T
    n_sources = len(index._source_offsets) - 1
    empty_text = np.diff(np.asarray(index._text_offsets)) < 1
    bad = (source < -1) | (source >= n_sources) | (start < 0) | (end < start) | (line < 1) | (page < -1) | empty_text
    if bad.any():
        raise CorruptIndexError(f"{index.folder / 'chunk_table.npy'}: row(s) {describe_rows(np.flatnonzero(bad))} "
                                "are not valid chunk entries (or their text is empty)")


def _decode(blob: np.ndarray, offsets: np.ndarray, i: int, path: Path, errors: str = "strict") -> str:
    raw = bytes(blob[int(offsets[i]) : int(offsets[i + 1])])
    try:
        return raw.decode("utf-8", errors)
    except UnicodeDecodeError as exc:
        raise CorruptIndexError(f"{path}: entry {i} is not valid UTF-8 (byte {exc.start} of it)") from None


# ----------------------------------------------------------------- helpers
def _has_chunks(documents: Sequence) -> bool:
    return len(documents) > 0 and isinstance(documents[0], Chunk)


def _chunk_table(documents: Sequence[Chunk] | Sequence[str]) -> tuple[list[str], list[np.ndarray], str]:
    """(texts, the five table arrays, a digest of the sources and places) for Chunks or plain texts."""
    if isinstance(documents, (str, bytes)) or not isinstance(documents, Sequence) or len(documents) == 0:
        raise TypeError("documents must be a non-empty list of Chunk objects or of strings")
    chunks = _has_chunks(documents)
    if chunks and not all(isinstance(c, Chunk) for c in documents):
        raise TypeError("documents must be all Chunk objects or all strings, not a mix")
    texts = check_texts([c.text for c in documents] if chunks else documents, name="documents")
    text_bytes, text_offsets = _pack([t.encode("utf-8") for t in texts])
    if chunks:
        names = list(dict.fromkeys(c.source for c in documents))
        ids = {name: i for i, name in enumerate(names)}
        table = np.array([[ids[c.source], c.start, c.end, c.line, -1 if c.page is None else c.page]
                          for c in documents], dtype=np.int64)
    else:
        names = []
        table = np.tile(np.array([-1, 0, 0, 1, -1], dtype=np.int64), (len(texts), 1))
    # A file name that is not UTF-8 reaches us with surrogates (os.fsdecode): kept as they are.
    source_bytes, source_offsets = _pack([name.encode("utf-8", "surrogatepass") for name in names])
    digest = hashlib.sha256(json.dumps(names).encode())
    digest.update(table.tobytes())
    return texts, [text_bytes, text_offsets, source_bytes, source_offsets, table], digest.hexdigest()


def _pack(pieces: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.zeros(len(pieces) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(p) for p in pieces]) if pieces else []
    return np.frombuffer(b"".join(pieces), dtype=np.uint8).copy(), offsets


def _quick_digest(path: Path) -> dict:
    """Size and SHA-256 of the first and last 64 KiB: cheap enough to check on every open."""
    size = path.stat().st_size
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        digest.update(f.read(_DIGEST_BYTES))
        if size > _DIGEST_BYTES:
            f.seek(max(_DIGEST_BYTES, size - _DIGEST_BYTES))
            digest.update(f.read())
    return {"bytes": size, "ends_sha256": digest.hexdigest()}

