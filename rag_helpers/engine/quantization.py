"""Smaller vectors: float16, int8 and binary codes, searched in NumPy.

Exact search reads every number of the float32 matrix once: 4 bytes per
number, 1.5 GB for a million 384-d vectors. That read is the floor for
float32 (``docs @ q`` cannot be faster), so the only way below it is to read
fewer bytes, and pay in precision:

* float16, 2 bytes a number. Scores move by less than 5e-4 (float16 keeps 11
  significant bits), so the ranking barely changes. It halves memory and
  disk; NumPy has no fast float16 arithmetic on CPUs, though, so each block
  is converted to float32 before its product, and that costs time.
* int8, 1 byte a number: each dimension j is stored as a whole number
  ``codes[:, j]`` in [-127, 127] times a scale ``scale[j]`` fitted to the
  corpus (its largest |value| / 127). A score is then
  ``codes @ (query * scale)``: the query is not rounded, only the documents.
* binary, 1 bit a number: only the sign of each value (``np.packbits``). Two
  vectors' Hamming distance (how many signs differ) tracks their angle, and
  is counted with XOR and ``np.bitwise_count``. It is too coarse to rank the
  top k directly, so ``search_binary`` keeps a shortlist of the closest codes
  and **rescores** it with the float vectors: a few hundred exact dot
  products instead of a million.

Recall against exact float32 search, and the time each takes, are measured in
``benchmarks/scale.py``.

Notebook 10 writes each of these in a few lines (``rag_helpers.scaling``:
``to_float16``, ``quantize_int8``, ``binary_codes``, ``hamming_distances``,
``search_binary``). The functions here check their arguments, then call the
taught function (``to_float16``, ``binary_codes`` block by block) or run a
fast path: a blocked int8/float16 scan, a Hamming scan on 64-bit words, and a
running shortlist instead of a full sort. ``tests/test_fast_paths_10.py``
proves each fast path gives the taught function's results.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import scaling as taught
from .._infra.validation import as_float_array, check_k, check_positive_int, describe_rows
from .blocked_search import matmul_scorer, scan_top_k, search_blocked
from .scoring import prepare_query_and_docs
from .topk import top_k_rows
from .vectors import UNIT_TOLERANCE, check_unit_rows

__all__ = [
    "to_float16",
    "search_float16",
    "Int8Codes",
    "quantize_int8",
    "search_int8",
    "binary_codes",
    "hamming_distances",
    "hamming_shortlist",
    "search_binary",
    "default_shortlist",
]

# Rows converted to float32 at a time by the float16 and int8 searches: the
# float32 copy (1.5 MiB at d = 384) stays in the CPU's L2 cache for the product.
_CAST_BLOCK_ROWS = 1024
# Rows of a quantization pass at a time: bounds the float temporaries.
_QUANTIZE_BLOCK_ROWS = 65536
# Codes compared with the query at a time: 8192 codes of 48 bytes (384 KiB)
# and their temporaries stay in L2, instead of 48 MB arrays written to memory.
_HAMMING_BLOCK_ROWS = 8192


# --------------------------------------------------------------------- float16
def to_float16(doc_vecs: np.ndarray) -> np.ndarray:
    """(n, d) unit rows -> (n, d) float16: half the bytes of float32.

    Each value keeps 11 significant bits, so a cosine moves by less than 5e-4.
    """
    docs = as_float_array(doc_vecs, name="doc_vecs", ndims=(2,))
    check_unit_rows(docs, name="doc_vecs")
    return taught.to_float16(docs)


def search_float16(
    query_vecs: np.ndarray, docs16: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top k over float16 documents: ``search``'s contract, on ``to_float16`` output.

    query_vecs : (d,) or (q, d) float, unit rows; docs16 : (n, d) float16.
    Returns (indices, scores): (k,) or (q, k), int64 and float32, best first,
    ties in index order. The scores are those of the float16 vectors.
    """
    docs16 = np.asarray(docs16)
    if docs16.dtype != np.float16 or docs16.ndim != 2:
        raise TypeError(f"docs16 must be an (n, d) float16 array (see to_float16), got {docs16.dtype} {docs16.shape}")
    queries, single, k = _prepare_queries(query_vecs, docs16.shape, k, name="docs16")
    # A float16 cosine is within 5e-4 of the float32 one, so the usual check applies.
    rows = max(k, _CAST_BLOCK_ROWS)
    indices, scores = scan_top_k(
        lambda: matmul_scorer(docs16, queries, rows), docs16.shape[0], len(queries), k, rows, workers=None
    )
    return (indices[0], scores[0]) if single else (indices, scores)


# ------------------------------------------------------------------------ int8
@dataclass(frozen=True)
class Int8Codes:
    """Documents as int8 codes: ``vectors ≈ codes * scale``.

    codes : (n, d) int8, in [-127, 127]
    scale : (d,) float32, > 0; one value per dimension, or all equal for a global scale.
    Each value is off by at most ``scale / 2`` (rounding to the nearest code).
    """

    codes: np.ndarray
    scale: np.ndarray

    def __post_init__(self) -> None:
        if not isinstance(self.codes, np.ndarray) or self.codes.dtype != np.int8 or self.codes.ndim != 2:
            raise TypeError(f"codes must be an (n, d) int8 array, got {_describe(self.codes)}")
        scale = np.asarray(self.scale)
        if scale.dtype != np.float32 or scale.shape != (self.codes.shape[1],):
            raise ValueError(f"scale must be ({self.codes.shape[1]},) float32, got {scale.dtype} {scale.shape}")
        if not (np.isfinite(scale).all() and (scale > 0).all()):
            raise ValueError("scale must hold finite positive numbers")

    @property
    def nbytes(self) -> int:
        return self.codes.nbytes + self.scale.nbytes

    def dequantize(self) -> np.ndarray:
        """(n, d) float32: the vectors the codes stand for."""
        return self.codes.astype(np.float32) * self.scale


def quantize_int8(doc_vecs: np.ndarray, *, per_dimension: bool = True) -> Int8Codes:
    """Calibrate a scale on the corpus and round every value to an int8 code.

    doc_vecs : (n, d) float, unit rows.
    per_dimension : one scale per dimension (each dimension's largest |value|
        maps to 127), or one for the whole matrix. Embedding dimensions differ
        in spread, so per-dimension scales keep more precision in the narrow ones.
    """
    docs = as_float_array(doc_vecs, name="doc_vecs", ndims=(2,))
    check_unit_rows(docs, name="doc_vecs")
    n, d = docs.shape
    peak = np.zeros(d, dtype=np.float32)
    for start in range(0, n, _QUANTIZE_BLOCK_ROWS):
        np.maximum(peak, np.abs(docs[start : start + _QUANTIZE_BLOCK_ROWS]).max(axis=0), out=peak)
    if not per_dimension:
        peak[:] = peak.max()
    # A dimension that is 0 everywhere gets codes 0 with any scale: take 1.
    scale = np.where(peak > 0, peak / 127, 1).astype(np.float32)
    codes = np.empty((n, d), dtype=np.int8)
    for start in range(0, n, _QUANTIZE_BLOCK_ROWS):
        block = docs[start : start + _QUANTIZE_BLOCK_ROWS] / scale
        # The largest |value| of each dimension lands on ±127 exactly, up to
        # float rounding, which clip absorbs.
        np.rint(block, out=block)
        codes[start : start + len(block)] = np.clip(block, -127, 127)
    return Int8Codes(codes, scale)


def search_int8(
    query_vecs: np.ndarray,
    codes: Int8Codes,
    k: int,
    *,
    doc_vecs: np.ndarray | None = None,
    rescore: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top k by int8 scores, optionally rescored with the float vectors.

    query_vecs : (d,) or (q, d) float, unit rows; codes : from ``quantize_int8``.
    doc_vecs : (n, d) float vectors (an array or a memory map). When given,
        the best ``rescore`` documents by int8 score (default ``4 * k``) are
        scored again exactly, and the top k of those is returned, with exact scores.

    Returns (indices, scores): (k,) or (q, k), int64 and float32, best first,
    ties in index order, like ``search``.
    """
    if not isinstance(codes, Int8Codes):
        raise TypeError(f"codes must be an Int8Codes (see quantize_int8), got {type(codes).__name__}")
    n = codes.codes.shape[0]
    queries, single, k = _prepare_queries(query_vecs, codes.codes.shape, k, name="codes")
    pool = k
    if doc_vecs is not None:
        docs = _check_rescoring_docs(doc_vecs, codes.codes.shape)
        pool = min(n, 4 * k if rescore is None else _check_pool(rescore, k, "rescore"))
    # The codes stand for vectors within |scale| / 2 of unit ones, so no
    # score of a unit query can exceed this: a larger one means corrupt codes.
    limit = (1 + UNIT_TOLERANCE) * (1 + UNIT_TOLERANCE + 0.5 * float(np.linalg.norm(codes.scale)))
    scaled = (queries * codes.scale).astype(np.float32)
    rows = max(pool, _CAST_BLOCK_ROWS)
    indices, scores = scan_top_k(
        lambda: matmul_scorer(codes.codes, scaled, rows), n, len(queries), pool, rows,
        workers=None, limit=limit, check=lambda s, first: _raise_bad_codes(s, first, limit),
    )
    if doc_vecs is not None:
        indices, scores = _rescore_all(queries, np.sort(indices, axis=1), docs, k)
    return (indices[0], scores[0]) if single else (indices, scores)


def _raise_bad_codes(scores: np.ndarray, first_doc: int, limit: float) -> None:
    bad = np.flatnonzero(~(np.abs(scores) <= limit).all(axis=0)) + first_doc
    raise ValueError(
        f"int8 codes of row(s) {describe_rows(bad)} give scores beyond ±{limit:.4g}, more than "
        "vectors of length 1 can: the codes or the scale are corrupt (quantize the unit vectors again)"
    )


# ---------------------------------------------------------------------- binary
def binary_codes(doc_vecs: np.ndarray, *, center: np.ndarray | None = None) -> np.ndarray:
    """One sign bit per value, packed: (n, d) -> (n, ceil(d/8)) uint8.

    Bit j of a row is 1 where ``x[j] > 0`` (0 where it is negative or zero),
    in ``np.packbits`` order (the first value in the highest bit of the first
    byte): notebook 10's ``binary_codes``, called on blocks of rows so its
    boolean temporary stays small. A (d,) vector gives (ceil(d/8),).

    center : optional (d,) vector subtracted first. Embeddings share a mean
        direction, so some dimensions have the same sign in nearly every
        document: their bits tell documents apart poorly. Codes of
        ``x - mean`` use every bit; the query must then be encoded with the
        same center (``search_binary(..., center=mean)``).
    Rows need not be unit length (a sign does not depend on it), only finite.
    """
    x = as_float_array(doc_vecs, name="doc_vecs")
    shift = _check_center(center, x.shape[-1])
    rows = x.reshape(1, -1) if x.ndim == 1 else x
    codes = np.empty((rows.shape[0], (rows.shape[1] + 7) // 8), dtype=np.uint8)
    for start in range(0, rows.shape[0], _QUANTIZE_BLOCK_ROWS):
        block = rows[start : start + _QUANTIZE_BLOCK_ROWS]
        finite = np.isfinite(block).all(axis=1)
        if not finite.all():
            bad = describe_rows(np.flatnonzero(~finite) + start)
            raise ValueError(f"doc_vecs has NaN or infinite values in row(s) {bad}")
        codes[start : start + len(block)] = taught.binary_codes(block if shift is None else block - shift)
    return codes[0] if x.ndim == 1 else codes


def hamming_distances(query_code: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """How many bits of each code differ from the query's: (n,) uint16.

    query_code : (nbytes,) uint8; codes : (n, nbytes) uint8, from ``binary_codes``.
    Notebook 10's ``hamming_distances`` is ``np.bitwise_count(codes ^ query_code).sum(axis=1)``;
    this fast path gives the same numbers in blocks, on 64-bit words, without its (n, nbytes) temporaries.
    """
    words, query_words = _check_codes(codes, query_code)
    scan = _HammingScan(words)
    scan.set_query(query_words)
    out = np.empty(len(words), dtype=np.uint16)
    for start in range(0, len(words), _HAMMING_BLOCK_ROWS):
        out[start : start + _HAMMING_BLOCK_ROWS] = scan.block(start)
    return out


def hamming_shortlist(query_code: np.ndarray, codes: np.ndarray, m: int) -> np.ndarray:
    """Indices of the ``m`` codes nearest the query's in Hamming distance, in index order.

    Ties at the cut go to the lower indices. (m,) int64, sorted ascending.
    """
    words, query_words = _check_codes(codes, query_code)
    m = check_k(m, len(words), name="m", what="codes")
    return _shortlist(_HammingScan(words), query_words, m)


def default_shortlist(k: int, n: int) -> int:
    """How many codes ``search_binary`` rescores when not told: ``max(200 * k, 2000)``, at most n.

    Measured on real all-MiniLM-L6-v2 embeddings (benchmarks/scale.py, 31,558
    texts, questions as queries): 2,000 codes give recall@10 0.994, 1,000 give
    0.988, 40 only 0.83. Rescoring 2,000 rows is cheap next to the scan (3 MB
    read, wherever the float vectors are). The shortlist a recall needs grows
    with the corpus, roughly in proportion (a true neighbour's rank among the
    codes is a share of N): for a large corpus, measure recall on your own
    data and pass ``shortlist``.
    """
    return min(n, max(200 * k, 2000))


def search_binary(
    query_vecs: np.ndarray,
    codes: np.ndarray,
    doc_vecs: np.ndarray,
    k: int,
    shortlist: int | None = None,
    *,
    center: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Hamming shortlist, then exact float32 rescoring: ``search``'s contract at a fraction of the reads.

    Notebook 10's ``search_binary`` in four lines, for one query or a batch, with
    checks: the same indices and scores for the same shortlist size (tested).

    query_vecs : (d,) or (q, d) float, unit rows
    codes : (n, ceil(d/8)) uint8, ``binary_codes(doc_vecs)`` (with the same ``center``)
    doc_vecs : (n, d) float, unit rows: an array or a memory map (only the
        shortlisted rows are read); float16 works too
    k : 1 <= k <= n
    shortlist : codes rescored per query, >= k (default ``default_shortlist(k, n)``);
        n or more rescores everything, which is exact search.

    Returns (indices, scores): (k,) int64 and (k,) float32 for one query,
    (q, k) each for a batch; best first, ties in index order; the scores are
    the float32 cosines of the rescored documents.
    """
    queries, docs, single = _prepare_for_rescoring(query_vecs, doc_vecs)
    n, d = docs.shape
    k = check_k(k, n)
    _check_center(center, d)
    m = default_shortlist(k, n) if shortlist is None else min(n, _check_pool(shortlist, k, "shortlist"))
    codes = np.asarray(codes)
    if codes.dtype != np.uint8 or codes.shape != (n, (d + 7) // 8):
        raise ValueError(
            f"codes must be ({n}, {(d + 7) // 8}) uint8 (binary_codes of the {n} documents of dimension {d}), "
            f"got {codes.dtype} {codes.shape}"
        )
    if m >= n and docs.dtype != np.float16:
        # Every document is rescored: that is exact search.
        indices, scores = search_blocked(queries, docs, k)
    else:
        words, _ = _check_codes(codes, None)
        scan = _HammingScan(words)
        query_words = binary_codes(queries, center=center).view(words.dtype)
        candidates = np.stack([_shortlist(scan, qw, m) for qw in query_words])
        indices, scores = _rescore_all(queries, candidates, docs, k)
    return (indices[0], scores[0]) if single else (indices, scores)


class _HammingScan:
    """Hamming distances of a query to blocks of codes, on 64-bit words, in reusable buffers."""

    def __init__(self, words: np.ndarray) -> None:
        self.words = words  # (n, w) unsigned words, w of them per code
        w = words.shape[1]
        size = _HAMMING_BLOCK_ROWS * w
        self.xor = np.empty(size, dtype=words.dtype)
        self.counts = np.empty(size, dtype=np.uint8)
        self.partial = np.empty(_HAMMING_BLOCK_ROWS, dtype=np.uint8)
        self.dist = np.empty(_HAMMING_BLOCK_ROWS, dtype=np.uint16)
        # Word counts can be summed in uint8 this many at a time (64 * 3 = 192 < 256).
        self.group = 255 // (8 * words.itemsize)
        self.tiled = np.empty(size, dtype=words.dtype)

    def set_query(self, query_words: np.ndarray) -> None:
        """The query's (w,) words, repeated for a whole block: one flat XOR, no broadcasting."""
        self.tiled.reshape(_HAMMING_BLOCK_ROWS, -1)[:] = query_words

    def block(self, start: int) -> np.ndarray:
        """(b,) uint16 distances of codes ``start:start + block`` to the query (a view into a reused buffer)."""
        block = self.words[start : start + _HAMMING_BLOCK_ROWS]
        b, w = block.shape
        # XOR and popcount on flat arrays: a broadcast over rows of w = 6 words
        # would run NumPy's inner loop 6 elements at a time (ten times slower).
        x = np.bitwise_xor(block.reshape(-1), self.tiled[: b * w], out=self.xor[: b * w])
        counts = _popcount(x, self.counts[: b * w]).reshape(b, w)
        # Sum each row's w counts, a column at a time (b elements per call).
        dist, part = self.dist[:b], self.partial[:b]
        for g in range(0, w, self.group):
            np.copyto(part, counts[:, g])
            for j in range(g + 1, min(w, g + self.group)):
                np.add(part, counts[:, j], out=part)
            if g == 0:
                np.copyto(dist, part)
            else:
                np.add(dist, part, out=dist)
        return dist


if hasattr(np, "bitwise_count"):  # NumPy >= 2.0

    def _popcount(x: np.ndarray, out: np.ndarray) -> np.ndarray:
        return np.bitwise_count(x, out=out)

else:  # pragma: no cover - NumPy 1.x: count the bits of each byte in a table
    _BYTE_BITS = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)

    def _popcount(x: np.ndarray, out: np.ndarray) -> np.ndarray:
        per_byte = _BYTE_BITS[x.view(np.uint8)].reshape(len(x), x.itemsize)
        return per_byte.sum(axis=1, dtype=np.uint8, out=out)


def _shortlist(scan: _HammingScan, query_words: np.ndarray, m: int) -> np.ndarray:
    """The m codes nearest the query (ties to lower indices), in index order: (m,) int64.

    The same idea as the exact search's running top k: after the first m
    codes, a code can only enter if its distance is below the m-th best so
    far (equal is not enough: the kept code has the lower index). Candidates
    wait in a list and are cut back to m only when they are as many as m.
    Each candidate is one integer key, distance * 2**40 + index, so a plain
    partition orders by distance, then index, with no ties left.
    """
    n = len(scan.words)
    scan.set_query(query_words)
    kept = np.empty(0, dtype=np.uint64)
    pending: list[np.ndarray] = []
    n_pending = 0
    bar = None  # the m-th best distance, once m codes were seen
    for start in range(0, n, _HAMMING_BLOCK_ROWS):
        dist = scan.block(start)
        near = np.arange(len(dist)) if bar is None else np.flatnonzero(dist < bar)
        if near.size == 0:
            continue
        pending.append((dist[near].astype(np.uint64) << np.uint64(40)) | (near + start).astype(np.uint64))
        n_pending += near.size
        if len(kept) + n_pending >= 2 * m or (bar is None and len(kept) + n_pending >= m):
            kept = _keep_smallest(np.concatenate([kept, *pending]), m)
            pending, n_pending = [], 0
            bar = int(kept.max() >> np.uint64(40))
    kept = _keep_smallest(np.concatenate([kept, *pending]), m)
    return np.sort((kept & np.uint64(2**40 - 1)).astype(np.int64))


def _keep_smallest(keys: np.ndarray, m: int) -> np.ndarray:
    return np.partition(keys, m - 1)[:m] if len(keys) > m else keys


# ------------------------------------------------------------- shared helpers
def _rescore_all(
    queries: np.ndarray, candidates: np.ndarray, docs: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top k of each query among its candidates ((q, m) int64, each row in index order)."""
    indices = np.empty((len(queries), k), dtype=np.int64)
    scores = np.empty((len(queries), k), dtype=np.float32)
    for r, (query, cand) in enumerate(zip(queries, candidates)):
        rows = docs[cand]  # only these rows are read (from the memory map, if docs is one)
        if rows.dtype == np.float16:
            rows = rows.astype(np.float32)
        s = rows @ query.astype(rows.dtype, copy=False)
        if not (s.min() >= -1 - UNIT_TOLERANCE and s.max() <= 1 + UNIT_TOLERANCE):
            _raise_bad_docs(s, cand)
        # Candidates are in index order, so top_k_rows' ties by position are ties by index.
        cols, vals = top_k_rows(s[None, :], k)
        indices[r], scores[r] = cand[cols[0]], vals[0]
    return indices, scores


def _raise_bad_docs(scores: np.ndarray, cand: np.ndarray) -> None:
    finite = np.isfinite(scores)
    if not finite.all():
        raise ValueError(f"doc_vecs has NaN or infinite values in row(s) {describe_rows(cand[~finite])}")
    bad = np.abs(scores) > 1 + UNIT_TOLERANCE
    raise ValueError(
        f"doc_vecs is not L2-normalized: row(s) {describe_rows(cand[bad])} give a cosine of "
        f"{float(np.abs(scores[bad]).max()):.4g}, outside [-1, 1] "
        "(call rag_helpers.l2_normalize on the documents first)"
    )


def _prepare_queries(query_vecs: np.ndarray, doc_shape: tuple[int, int], k: int, *, name: str):
    """Queries checked against documents of ``doc_shape``: ((q, d) float32, was it one query, k)."""
    q = as_float_array(query_vecs, name="query")
    if q.shape[-1] != doc_shape[1]:
        raise ValueError(
            f"dimension mismatch: query vectors have {q.shape[-1]} values but {name} has "
            f"{doc_shape[1]} per document (query shape {q.shape}, {name} shape {doc_shape})"
        )
    check_unit_rows(q, name="query")
    k = check_k(k, doc_shape[0])
    return np.atleast_2d(q).astype(np.float32), q.ndim == 1, k


def _prepare_for_rescoring(query_vecs: np.ndarray, doc_vecs: np.ndarray):
    """(queries (q, d), docs (n, d), was it one query), checked like ``search``'s.

    float16 documents stay float16 (``prepare_query_and_docs`` would convert
    them all); only the rescored rows are converted.
    """
    docs = doc_vecs if isinstance(doc_vecs, np.ndarray) else np.asarray(doc_vecs)
    if docs.dtype == np.float16:
        if docs.ndim != 2:
            raise ValueError(f"doc_vecs must be 2-D, got shape {docs.shape}")
        queries, single, _ = _prepare_queries(query_vecs, docs.shape, 1, name="doc_vecs")
        return queries, docs, single
    q, docs = prepare_query_and_docs(query_vecs, docs)
    return np.atleast_2d(q), docs, q.ndim == 1


def _check_rescoring_docs(doc_vecs: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    docs = doc_vecs if isinstance(doc_vecs, np.ndarray) else np.asarray(doc_vecs)
    if docs.dtype.kind != "f" or docs.shape != shape:
        raise ValueError(f"doc_vecs must be {shape} floats, the vectors the codes were made from; "
                         f"got {docs.dtype} {docs.shape}")
    return docs


def _check_pool(value: object, k: int, name: str) -> int:
    value = check_positive_int(value, name)
    if value < k:
        raise ValueError(f"{name}={value} is smaller than k={k}: the top k must come from at least k candidates")
    return value


def _check_center(center: np.ndarray | None, d: int) -> np.ndarray | None:
    if center is None:
        return None
    c = as_float_array(center, name="center", ndims=(1,))
    if c.shape != (d,) or not np.isfinite(c).all():
        raise ValueError(f"center must be a finite ({d},) vector, got shape {c.shape}")
    return c


def _check_codes(codes: np.ndarray, query_code: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Codes (and a query code) as unsigned words: the widest of 8, 4, 2, 1 bytes that divides a row."""
    codes = np.asarray(codes)
    if codes.dtype != np.uint8 or codes.ndim != 2 or codes.shape[1] == 0:
        raise ValueError(f"codes must be an (n, nbytes) uint8 array from binary_codes, got {_describe(codes)}")
    nbytes = codes.shape[1]
    width = next(w for w in (8, 4, 2, 1) if nbytes % w == 0)
    words = np.ascontiguousarray(codes).view(f"u{width}")
    if query_code is None:
        return words, None
    query_code = np.asarray(query_code)
    if query_code.dtype != np.uint8 or query_code.shape != (nbytes,):
        raise ValueError(f"query_code must be ({nbytes},) uint8 like a row of codes, got {_describe(query_code)}")
    return words, np.ascontiguousarray(query_code).view(words.dtype)


def _describe(x: object) -> str:
    return f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
