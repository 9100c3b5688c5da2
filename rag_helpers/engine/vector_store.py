"""A real vector database behind the course's search: Qdrant, in-process or on a server.

Which engine, and why
---------------------
Three candidates were measured on the course's 2-core machine (random 384-d
unit vectors, 64 queries, k = 10; the figures and commands are in issue 18's
note and ``benchmarks/vectordb.py``):

- ``qdrant-edge-py``: Qdrant's own storage and search engine (the Rust code of
  the server: segments, write-ahead log, HNSW graph, payload indexes) as a
  Python extension with no dependencies (35 MB). It runs in the notebook's
  process, offline, with nothing to start. Flat search returns
  ``rag_helpers.search``'s top-k, scores within 2e-7; it inserts 10,000
  vectors in under a second and searches them in 1-2 ms; its HNSW graph
  lives next to the flat vectors, so one collection answers both
  ``exact=True`` and ``exact=False``, and filtered searches stay correct on
  the graph (Qdrant adds links per payload value; without them a filtered
  HNSW search found none of the true top-10 in a measurement at 2e4).
- ``qdrant-client``'s local mode (``QdrantClient(path=...)``): the same
  client code as a server, but a pure-Python stand-in: 28 s to insert
  10,000 vectors into a folder (5 s in memory) and 20 ms a query, and no
  HNSW (every search is brute force, ``search_params`` are ignored).
- ``pymilvus`` + ``milvus-lite`` 3.x: since 3.0 a pure-Python rewrite (the
  276 kB wheel) that starts a gRPC server on 127.0.0.1 inside the process and
  keeps segments in Parquet with FAISS indexes; it pulls in pyarrow (~200 MB
  installed in all), needs the loopback network, took 43 ms a query at 1e4
  and 1 s at 1e5, and holds one index per vector field, so flat and HNSW
  search need two copies of the vectors.

So the embedded engine is Qdrant Edge, and a server or a cluster is reached
with ``qdrant-client`` (the package Qdrant publishes for that). Both speak
Qdrant's data model (points with a UUID, a vector and a JSON payload; filters
of ``FieldCondition``/``MatchAny``/``Range``), and this class hides the rest:
**the one change a learner makes to move to a server is a URL instead of a
folder**::

    store = VectorStore("my_index", 384)                # embedded, in this process
    store = VectorStore("http://localhost:6333", 384)   # a Qdrant server or cluster

A server on one's own machine (Docker)::

    docker run -p 6333:6333 -v "$PWD/qdrant_storage:/qdrant/storage" qdrant/qdrant

A cluster (several nodes, shards and replicas) is the same URL pointed at any
node, or Qdrant Cloud's URL with ``QDRANT_API_KEY`` set in the environment.
This class creates a missing collection with one shard; to spread one over
the nodes, create it first with ``QdrantClient(url).create_collection(...,
shard_number=..., replication_factor=...)`` and the same vector size and
``Distance.DOT``: an existing collection is used as it is.
Continuous integration runs the embedded engine only.

No network at import or in embedded use: this module imports ``qdrant_edge``
only when a folder store is opened and ``qdrant_client`` only for a URL;
neither sends telemetry from the client side (measured: the embedded store
works in a process with no network at all, ``unshare -n``).

How the course's data maps onto the engine
------------------------------------------
- A chunk's key (64 hex characters, a SHA-256) becomes the point id
  ``uuid.UUID(key[:32])`` (Qdrant ids are integers or UUIDs), and the full key
  is kept in the payload under ``"key"``, which is what searches return.
- Distance is the dot product. Every row is checked to be unit length on the
  way in, so the dot product *is* the cosine, as ``rag_helpers.search``
  computes it, to float32 rounding (``Cosine`` would normalize the rows again
  and change the last bits of the scores).
- ``source``, ``page`` and ``section`` get payload indexes, so a filter is
  applied inside the search, before the top-k: k results come back whenever k
  chunks match.
"""
from __future__ import annotations

import numbers
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from .._infra.validation import as_float_array
from .vectors import check_unit_rows

__all__ = ["StoreFilter", "VectorStore", "key_to_point_id", "HNSW_M", "HNSW_EF_CONSTRUCT", "HNSW_EF"]

#: HNSW graph: links per node and the candidate list while building (Qdrant's defaults).
HNSW_M = 16
HNSW_EF_CONSTRUCT = 100
#: Candidates kept while searching the graph (``exact=False``); more is slower and finds more.
HNSW_EF = 128
#: Kilobytes of vectors below which Qdrant scans instead of walking the graph: a whole segment that
#: small, or a filter matching that few chunks (via the payload index). 1,000 KB is about 650
#: 384-d float32 vectors; Qdrant's default (10,000 KB, ~6,500) would hide the graph at the course's
#: sizes. Per-value graph links for filtered search are built only for values matching more than this:
#: at 1 KB the graph took several times longer to build (a link set per source, page and section).
HNSW_FULL_SCAN_KB = 1000

_KEY_RE = re.compile(r"[0-9a-f]{64}")
_INDEXED_FIELDS = {"source": "keyword", "page": "integer", "section": "keyword"}
# Points read per call when listing every key.
_SCROLL_BATCH = 4096
# Points sent per update: bounds the Python lists built at once.
_UPSERT_BATCH = 1024


@dataclass(frozen=True)
class StoreFilter:
    """Which chunks a search may return; ``None`` means no restriction on that field.

    The caller resolves globs, file types and headings into concrete values
    first; the store only compares payload values.

    sources : payload ``"source"`` is one of these strings.
    pages : ``(lo, hi)``: payload ``"page"`` within ``[lo, hi]``, both ends
        included; chunks without a page never match.
    sections : payload ``"section"`` is one of these strings.

    An empty tuple matches nothing. Conditions on several fields must all hold.
    """

    sources: tuple[str, ...] | None = None
    pages: tuple[int, int] | None = None
    sections: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("sources", "sections"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, str) or not isinstance(value, (tuple, list, set, frozenset)):
                raise TypeError(f"StoreFilter.{name} must be a tuple of strings or None, got {type(value).__name__}")
            bad = [v for v in value if not isinstance(v, str)]
            if bad:
                raise TypeError(f"StoreFilter.{name} must hold strings only, got {bad[0]!r}")
            object.__setattr__(self, name, tuple(value))
        if self.pages is not None:
            pages = self.pages
            if (not isinstance(pages, (tuple, list)) or len(pages) != 2
                    or any(isinstance(p, bool) or not isinstance(p, numbers.Integral) for p in pages)):
                raise TypeError(f"StoreFilter.pages must be a (lo, hi) pair of integers or None, got {pages!r}")
            lo, hi = int(pages[0]), int(pages[1])
            if lo > hi:
                raise ValueError(f"StoreFilter.pages: lo={lo} is greater than hi={hi}")
            object.__setattr__(self, "pages", (lo, hi))

    @property
    def matches_nothing(self) -> bool:
        """True when an empty tuple rules every chunk out."""
        return self.sources == () or self.sections == ()

    def matches(self, payload: dict) -> bool:
        """The filter applied to one payload in Python: the reference the tests compare with."""
        if self.sources is not None and payload.get("source") not in self.sources:
            return False
        if self.sections is not None and payload.get("section") not in self.sections:
            return False
        if self.pages is not None:
            page = payload.get("page")
            if page is None or not self.pages[0] <= page <= self.pages[1]:
                return False
        return True


def key_to_point_id(key: str) -> str:
    """The engine's id for a 64-hex-character chunk key: the UUID of its first 32 characters.

    128 bits of a SHA-256: two different chunks collide with probability
    about n² / 2¹²⁹, nothing at any size a store holds.
    """
    return str(uuid.UUID(hex=key[:32]))


def _is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


class VectorStore:
    """Chunk vectors with payloads in Qdrant: upsert, delete, and exact or HNSW search with filters.

    Parameters
    ----------
    location : a folder (the embedded engine, in this process; created if
        missing, reopened if it holds a store), ``":memory:"`` (embedded, in a
        temporary folder removed on ``close``), or ``"http://host:port"`` /
        ``"https://..."`` (a Qdrant server or cluster, through ``qdrant-client``;
        ``QDRANT_API_KEY`` from the environment is sent if set).
    dim : the vectors' length, e.g. 384. Reopening a store with another
        ``dim`` raises ``ValueError``.
    collection : the collection's name on a server (the embedded store holds
        one collection per folder, and ignores it).
    hnsw : build Qdrant's HNSW graph, so ``search(..., exact=False)`` can use
        it. The graph is built (blocking) on the first approximate search
        after a change, not on every upsert.
    hnsw_ef : candidates kept while searching the graph; more is slower and
        finds more of the exact top-k.

    Use it as a context manager, or call ``close()``: an embedded folder is
    locked while open (a second store on the same folder raises).
    """

    def __init__(self, location: str | os.PathLike, dim: int, *, collection: str = "chunks", hnsw: bool = False,
                 hnsw_ef: int = HNSW_EF) -> None:
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim < 1:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        if isinstance(hnsw_ef, bool) or not isinstance(hnsw_ef, numbers.Integral) or hnsw_ef < 1:
            raise ValueError(f"hnsw_ef must be a positive integer, got {hnsw_ef!r}")
        if not isinstance(collection, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,255}", collection):
            raise ValueError(f"collection must be 1-255 letters, digits, '_' or '-', got {collection!r}")
        if not isinstance(location, (str, os.PathLike)):
            raise TypeError(f"location must be a folder path, ':memory:' or a URL, got {type(location).__name__}")
        self.dim = int(dim)
        self.hnsw = bool(hnsw)
        self.hnsw_ef = int(hnsw_ef)
        self.collection = collection
        self._closed = False
        loc = os.fspath(location)
        if isinstance(loc, bytes):
            loc = os.fsdecode(loc)
        if not loc:
            raise ValueError("location is empty: give a folder, ':memory:' or a URL")
        self.location = loc
        if _is_url(loc):
            self._backend: _Backend = _ServerBackend(loc, self.dim, collection, self.hnsw)
        else:
            self._backend = _EdgeBackend(loc, self.dim, self.hnsw)

    @classmethod
    def _from_qdrant_client(cls, client: Any, dim: int, *, collection: str = "chunks",
                            hnsw: bool = False, hnsw_ef: int = HNSW_EF) -> VectorStore:
        """A store on an already made ``qdrant_client.QdrantClient``: the server code path.

        The tests pass ``QdrantClient(":memory:")`` (qdrant-client's local
        mode, which implements the server's API in Python) to run the very
        code that talks to a server, without one.
        """
        self = cls.__new__(cls)
        self.dim, self.hnsw, self.hnsw_ef, self.collection = int(dim), bool(hnsw), int(hnsw_ef), collection
        self.location, self._closed = repr(client), False
        self._backend = _ServerBackend(client, self.dim, collection, self.hnsw)
        return self

    # ------------------------------------------------------------------ writing
    def upsert(self, keys: Sequence[str], vectors: np.ndarray, payloads: Sequence[dict]) -> None:
        """Insert the chunks, replacing any stored under the same keys.

        keys : n distinct strings of 64 lowercase hex characters (SHA-256 digests).
        vectors : (n, dim) float32 (float64 accepted), unit rows.
        payloads : n dicts, each with ``"source"`` (str), ``"page"`` (int or
            None) and ``"section"`` (str or None), plus any JSON-serializable
            fields; ``"key"`` is added (or must already equal the key).
        """
        self._check_open()
        keys = self._check_keys(keys, "keys")
        if isinstance(payloads, (dict, str)) or not isinstance(payloads, Sequence):
            raise TypeError(f"payloads must be a sequence of dicts, got {type(payloads).__name__}")
        if not keys and not len(payloads) and np.size(vectors) == 0:
            return  # nothing new: a no-op, as for an unchanged folder
        vecs = as_float_array(vectors, name="vectors", ndims=(2,))
        if vecs.shape[1] != self.dim:
            raise ValueError(f"vectors have {vecs.shape[1]} columns; this store holds dim={self.dim}")
        if not len(keys) == len(vecs) == len(payloads):
            raise ValueError(f"keys, vectors and payloads must have the same length, got "
                             f"{len(keys)}, {len(vecs)} and {len(payloads)}")
        if len(keys) != len(set(keys)):
            seen: set[str] = set()
            dup = next(k for k in keys if k in seen or seen.add(k))
            raise ValueError(f"keys must be distinct; {dup} appears more than once")
        check_unit_rows(vecs, name="vectors")
        vecs = np.ascontiguousarray(vecs, dtype=np.float32)
        full = [self._check_payload(p, key, i) for i, (p, key) in enumerate(zip(payloads, keys))]
        ids = [key_to_point_id(k) for k in keys]
        if len(set(ids)) != len(ids):
            # Never by chance for SHA-256 digests; keys made some other way might share their first half.
            raise ValueError("two keys share their first 32 hex characters (the engine's id): keys must be "
                             "SHA-256 digests, e.g. hashlib.sha256(text.encode()).hexdigest()")
        for start in range(0, len(keys), _UPSERT_BATCH):
            stop = start + _UPSERT_BATCH
            self._backend.upsert(ids[start:stop], vecs[start:stop], full[start:stop])

    def delete(self, keys: Sequence[str]) -> None:
        """Remove the chunks stored under ``keys``; keys not stored are ignored."""
        self._check_open()
        keys = self._check_keys(keys, "keys")
        if keys:
            self._backend.delete([key_to_point_id(k) for k in keys])

    # ------------------------------------------------------------------ reading
    def keys(self) -> set[str]:
        """Every key stored (reads every point's ``"key"``: O(n))."""
        self._check_open()
        return self._backend.keys()

    def __len__(self) -> int:
        self._check_open()
        return self._backend.count()

    def search(self, query: np.ndarray, k: int, *, where: StoreFilter | None = None,
               exact: bool = True) -> tuple[list[str], np.ndarray]:
        """The k stored chunks most similar to ``query`` (among those ``where`` allows).

        query : (dim,) float32 (float64 accepted), unit length.
        k : int >= 1. Fewer than k come back only when fewer chunks match.
        where : a ``StoreFilter``, applied inside the search (before the top-k).
        exact : True: every matching vector is scored (flat search), giving
            ``rag_helpers.search``'s top-k and scores. False: Qdrant's HNSW
            graph (needs ``hnsw=True``), approximate.

        Returns ``(keys, scores)``: a list of up to k keys, best first, and
        their cosine similarities as a (len(keys),) float32 array. Equal
        scores come in the engine's order, not necessarily by insertion.
        """
        self._check_open()
        if isinstance(k, bool) or not isinstance(k, numbers.Integral):
            raise TypeError(f"k must be an integer, got {type(k).__name__} {k!r}")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        q = as_float_array(query, name="query", ndims=(1,))
        if q.shape[0] != self.dim:
            raise ValueError(f"query has {q.shape[0]} values; this store holds dim={self.dim}")
        check_unit_rows(q, name="query")
        if where is not None and not isinstance(where, StoreFilter):
            raise TypeError(f"where must be a StoreFilter or None, got {type(where).__name__}")
        if not isinstance(exact, bool):
            raise TypeError(f"exact must be True or False, got {exact!r}")
        if not exact and not self.hnsw:
            raise ValueError("exact=False searches the HNSW graph: open the store with VectorStore(..., hnsw=True)")
        if where is not None and where.matches_nothing:
            return [], np.empty(0, dtype=np.float32)
        keys, scores = self._backend.search(np.asarray(q, dtype=np.float32), int(k), where, exact, self.hnsw_ef)
        return keys, np.asarray(scores, dtype=np.float32)

    def build_index(self) -> None:
        """Build the HNSW graph now (blocking), instead of on the first approximate search after a change.

        Needs ``hnsw=True``. Returns at once if nothing changed since the last build.
        """
        self._check_open()
        if not self.hnsw:
            raise ValueError("build_index builds the HNSW graph: open the store with VectorStore(..., hnsw=True)")
        self._backend.build_index()

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Write everything to disk and release the folder (or the connection). Safe to call twice."""
        if not self._closed:
            self._closed = True
            self._backend.close()

    def __enter__(self) -> VectorStore:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __del__(self) -> None:
        # A store dropped without close() still releases its folder's lock.
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"VectorStore({self.location!r}, dim={self.dim}, hnsw={self.hnsw}, {state})"

    # ------------------------------------------------------------------ checks
    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"{self!r} is closed")

    @staticmethod
    def _check_keys(keys: Sequence[str], name: str) -> list[str]:
        if isinstance(keys, str) or not isinstance(keys, (Sequence, set, frozenset)):
            raise TypeError(f"{name} must be a sequence of strings, got {type(keys).__name__}")
        keys = list(keys)
        for i, key in enumerate(keys):
            if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
                raise ValueError(f"{name}[{i}] must be 64 lowercase hex characters (a SHA-256), got {key!r}")
        return keys

    @staticmethod
    def _check_payload(payload: object, key: str, i: int) -> dict:
        if not isinstance(payload, dict):
            raise TypeError(f"payloads[{i}] must be a dict, got {type(payload).__name__}")
        out = dict(payload)
        if "source" not in out or not isinstance(out["source"], str):
            raise ValueError(f"payloads[{i}] needs a 'source' string, got {out.get('source')!r}")
        page = out.setdefault("page", None)
        if page is not None and (isinstance(page, bool) or not isinstance(page, numbers.Integral)):
            raise ValueError(f"payloads[{i}]['page'] must be an int or None, got {page!r}")
        if page is not None:
            out["page"] = int(page)
        section = out.setdefault("section", None)
        if section is not None and not isinstance(section, str):
            raise ValueError(f"payloads[{i}]['section'] must be a string or None, got {section!r}")
        if out.setdefault("key", key) != key:
            raise ValueError(f"payloads[{i}]['key'] is {out['key']!r}, not its key {key!r}")
        return out


# ---------------------------------------------------------------------- engines
class _Backend:
    """What VectorStore needs from an engine; inputs are already checked."""

    def upsert(self, ids: list[str], vectors: np.ndarray, payloads: list[dict]) -> None: ...
    def delete(self, ids: list[str]) -> None: ...
    def keys(self) -> set[str]: ...
    def count(self) -> int: ...
    def search(self, query: np.ndarray, k: int, where: StoreFilter | None, exact: bool,
               ef: int) -> tuple[list[str], list[float]]: ...
    def build_index(self) -> None: ...
    def close(self) -> None: ...


def _filter(where: StoreFilter | None, m: Any, range_cls: Any) -> Any:
    """A Qdrant ``Filter`` for ``where`` from module ``m`` (qdrant_edge or qdrant_client.models)."""
    if where is None:
        return None
    must = []
    if where.sources is not None:
        must.append(m.FieldCondition(key="source", match=m.MatchAny(any=list(where.sources))))
    if where.sections is not None:
        must.append(m.FieldCondition(key="section", match=m.MatchAny(any=list(where.sections))))
    if where.pages is not None:
        # A missing or null page fails a range condition: such chunks never match.
        must.append(m.FieldCondition(key="page", range=range_cls(gte=where.pages[0], lte=where.pages[1])))
    return m.Filter(must=must) if must else None


class _EdgeBackend(_Backend):
    """Qdrant Edge: the engine in this process, its files in one folder."""

    def __init__(self, location: str, dim: int, hnsw: bool) -> None:
        import qdrant_edge as e

        self._e = e
        self._hnsw = hnsw
        self._tmp: str | None = None
        if location == ":memory:":
            self._tmp = tempfile.mkdtemp(prefix="rag_vector_store_")
            path = Path(self._tmp)
        else:
            path = Path(location).expanduser()
            if path.exists() and not path.is_dir():
                raise ValueError(f"location {str(path)!r} is a file; a vector store is a folder")
        # Distance Dot on unit rows is the cosine, bit for bit as NumPy's.
        # Below ``indexing_threshold`` KB a segment keeps no graph; 1 KB means
        # every segment gets one (Qdrant's default waits for ~10 MB), so
        # exact=False measures HNSW, not a hidden full scan. hnsw=False: 0
        # turns the graph off (no time spent building one).
        config = e.EdgeConfig(
            vectors=e.EdgeVectorParams(size=dim, distance=e.Distance.Dot),
            hnsw_config=e.HnswIndexConfig(m=HNSW_M, ef_construct=HNSW_EF_CONSTRUCT,
                                          full_scan_threshold=HNSW_FULL_SCAN_KB),
            optimizers=e.EdgeOptimizersConfig(indexing_threshold=1 if hnsw else 0),
        )
        existing = path.is_dir() and (path / "edge_config.json").exists()
        try:
            if existing:
                self._shard = e.EdgeShard.load(str(path), config)
            else:
                if path.is_dir() and any(path.iterdir()):
                    raise ValueError(f"location {str(path)!r} is a folder that holds other files, not a "
                                     "vector store; give an empty or new folder")
                path.mkdir(parents=True, exist_ok=True)
                self._shard = e.EdgeShard.create(str(path), config)
                for field, kind in _INDEXED_FIELDS.items():
                    schema = e.PayloadSchemaType.Keyword if kind == "keyword" else e.PayloadSchemaType.Integer
                    self._shard.update(e.UpdateOperation.create_field_index(field, schema))
        except ValueError:
            self._cleanup()
            raise
        except Exception as exc:  # the engine raises bare Exception with its own message
            self._cleanup()
            msg = str(exc)
            if "WouldBlock" in msg:
                raise ValueError(f"the vector store in {str(path)!r} is open elsewhere (another VectorStore "
                                 "or process); close it first") from None
            if "ncompatible" in msg:
                raise ValueError(f"the vector store in {str(path)!r} does not hold dim={dim} vectors: "
                                 f"{msg}") from None
            raise ValueError(f"cannot open the vector store in {str(path)!r}: {msg}") from None
        # The graph is built lazily, before the first approximate search after a change.
        self._graph_stale = hnsw

    def _cleanup(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def upsert(self, ids: list[str], vectors: np.ndarray, payloads: list[dict]) -> None:
        e = self._e
        points = [e.Point(pid, vec.tolist(), payload) for pid, vec, payload in zip(ids, vectors, payloads)]
        self._shard.update(e.UpdateOperation.upsert_points(points))
        self._graph_stale = self._hnsw

    def delete(self, ids: list[str]) -> None:
        self._shard.update(self._e.UpdateOperation.delete_points(ids))
        self._graph_stale = self._hnsw

    def build_index(self) -> None:
        if self._graph_stale:
            self._shard.optimize()  # builds the HNSW graph of every segment that lacks one
            self._graph_stale = False

    def keys(self) -> set[str]:
        e, out, offset = self._e, set(), None
        while True:
            records, offset = self._shard.scroll(e.ScrollRequest(offset=offset, limit=_SCROLL_BATCH,
                                                                 with_payload=["key"]))
            out.update(r.payload["key"] for r in records)
            if offset is None:
                return out

    def count(self) -> int:
        return int(self._shard.count(self._e.CountRequest(exact=True)))

    def search(self, query: np.ndarray, k: int, where: StoreFilter | None, exact: bool,
               ef: int) -> tuple[list[str], list[float]]:
        e = self._e
        if not exact:
            self.build_index()
        hits = self._shard.query(e.QueryRequest(
            limit=k, query=e.Query.Nearest(query.tolist()), filter=_filter(where, e, e.RangeFloat),
            with_payload=["key"], params=e.SearchParams(exact=exact, hnsw_ef=ef)))
        return [h.payload["key"] for h in hits], [h.score for h in hits]

    def close(self) -> None:
        try:
            self._shard.flush()
            self._shard.close()
        finally:
            self._cleanup()


class _ServerBackend(_Backend):
    """A Qdrant server or cluster through ``qdrant-client`` (the same calls work on its local mode)."""

    def __init__(self, location: Any, dim: int, collection: str, hnsw: bool) -> None:
        from qdrant_client import QdrantClient, models

        self._m = models
        self._name = collection
        if isinstance(location, str):
            self._client = QdrantClient(url=location, api_key=os.environ.get("QDRANT_API_KEY") or None)
        else:
            self._client = location
        client = self._client
        if client.collection_exists(collection):
            params = client.get_collection(collection).config.params.vectors
            size = getattr(params, "size", None)
            if size != dim:
                raise ValueError(f"collection {collection!r} holds vectors of size {size}, not dim={dim}")
        else:
            client.create_collection(
                collection,
                vectors_config=models.VectorParams(size=dim, distance=models.Distance.DOT),
                # The same graph settings as the embedded engine (see _EdgeBackend).
                hnsw_config=models.HnswConfigDiff(m=HNSW_M, ef_construct=HNSW_EF_CONSTRUCT,
                                                  full_scan_threshold=HNSW_FULL_SCAN_KB),
                optimizers_config=models.OptimizersConfigDiff(indexing_threshold=1 if hnsw else 0),
            )
            for field, kind in _INDEXED_FIELDS.items():
                schema = models.PayloadSchemaType.KEYWORD if kind == "keyword" else models.PayloadSchemaType.INTEGER
                client.create_payload_index(collection, field, field_schema=schema)

    def upsert(self, ids: list[str], vectors: np.ndarray, payloads: list[dict]) -> None:
        self._client.upsert(self._name, wait=True, points=self._m.Batch(ids=ids, vectors=vectors.tolist(),
                                                                         payloads=payloads))

    def delete(self, ids: list[str]) -> None:
        self._client.delete(self._name, wait=True, points_selector=self._m.PointIdsList(points=ids))

    def keys(self) -> set[str]:
        out, offset = set(), None
        while True:
            records, offset = self._client.scroll(self._name, offset=offset, limit=_SCROLL_BATCH,
                                                  with_payload=["key"])
            out.update(r.payload["key"] for r in records)
            if offset is None:
                return out

    def count(self) -> int:
        return int(self._client.count(self._name, exact=True).count)

    def search(self, query: np.ndarray, k: int, where: StoreFilter | None, exact: bool,
               ef: int) -> tuple[list[str], list[float]]:
        m = self._m
        hits = self._client.query_points(
            self._name, query=query.tolist(), limit=k, query_filter=_filter(where, m, m.Range),
            with_payload=["key"], search_params=m.SearchParams(exact=exact, hnsw_ef=ef)).points
        return [h.payload["key"] for h in hits], [h.score for h in hits]

    def build_index(self) -> None:
        pass  # a server builds its graph in the background, by itself

    def close(self) -> None:
        self._client.close()
