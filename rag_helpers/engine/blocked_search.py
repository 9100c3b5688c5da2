"""The optimized path of ``rag_helpers.search``: exact top-k over a large matrix, in blocks.

Notebooks 03 and 04 teach search as scores then top-k: ``scores = docs @ q`` and
``np.argsort(-scores, kind="stable")[:k]`` (``rag_helpers.topk.search``). This
module computes the same answer (``tests/test_fast_paths_03_04.py``), but faster and
with bounded memory: the documents are scored block by block, and each block
is folded into the running top k with as little work as possible.

The loop over blocks, ``scan_top_k``, does not care how a block is scored:
``search_blocked`` scores float32 (or float64) rows with one BLAS call, and
``quantization.py`` and ``index_store.py`` reuse the same loop for float16
and int8 rows and for memory-mapped files.

Nothing here checks its inputs: the public functions that call it do that once.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .scoring import check_scores
from .topk import top_k_one_row, top_k_rows
from .vectors import UNIT_TOLERANCE

__all__ = ["search_blocked", "search_one_block", "scan_top_k", "rows_per_block", "usable_cpus", "SCORE_BLOCK_BYTES"]

#: Most bytes of scores held at once by ``search``. A batch of 64 queries over
#: a million documents would need a (64, 1_000_000) score matrix (256 MB);
#: blocks of documents keep it to this size, whatever q and n are.
SCORE_BLOCK_BYTES = 8 * 2**20
# Bytes of scores per block when block_bytes allows more: a block written by
# the matrix product is read again (checks, candidates) while it is still in
# the CPU's L2 cache (1-2 MiB per core on current x86 CPUs). Measured on a
# batch of 64: 1 MiB blocks make search 10-15% faster than 8 MiB ones.
_CACHE_BLOCK_BYTES = 2**20
# Most documents in one block: for a single query, a block's scores (256 KiB)
# stay in the fastest caches between the product and the checks.
_MAX_BLOCK_ROWS = 65536
# When a block has more candidates than this fraction of its scores (e.g.
# scores that rise with the index), its own top k per query is a smaller
# pool that still holds every possible winner, and cheaper to merge.
_FEW_CANDIDATES = 1 / 32
# Queries scored together: enough to make the matrix product efficient,
# few enough that a block still holds many documents.
_QUERY_CHUNK = 256
# Split a batch search into this many contiguous ranges of documents, scanned
# by as many threads (None: one per usable CPU, at most 2), each with a
# single-threaded BLAS. One thread with a two-threaded BLAS leaves a core idle
# whenever it checks and merges a block; two threads keep both cores busy
# (NumPy and BLAS release the GIL). Measured on 2 cores, a batch of 64:
# 10-20% faster, now on par with or ahead of faiss's IndexFlatIP on BLAS.
_BATCH_WORKERS: int | None = None
# A range gets a thread of its own only if it holds at least this many blocks:
# below that, starting threads costs more than it saves.
_MIN_BLOCKS_PER_WORKER = 8

_FLOAT32 = np.dtype(np.float32)
# Largest |cosine| check_scores accepts.
_SCORE_LIMIT = 1.0 + UNIT_TOLERANCE

#: A function that scores documents ``start:stop`` against the queries:
#: returns (stop - start, q) float scores, one row per document. It may reuse
#: one buffer from call to call (the loop copies what it keeps).
BlockScorer = Callable[[int, int], np.ndarray]
#: ``check(scores (q, b), first_doc)``: raises ``ValueError`` naming the bad documents.
ScoreCheck = Callable[[np.ndarray, int], None]


def _check_cosines(scores: np.ndarray, first_doc: int) -> None:
    check_scores(scores, first_doc=first_doc)


def usable_cpus() -> int:
    """CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def rows_per_block(k: int, n_queries: int, itemsize: int, block_bytes: int) -> int:
    """Documents per block: ``block_bytes`` of scores, capped to stay in cache, never below k."""
    cache_rows = _CACHE_BLOCK_BYTES // (itemsize * n_queries)
    return max(k, min(_MAX_BLOCK_ROWS, block_bytes // (itemsize * n_queries), max(cache_rows, 1024)))


def search_blocked(
    queries: np.ndarray,
    docs: np.ndarray,
    k: int,
    block_bytes: int = SCORE_BLOCK_BYTES,
    *,
    after_block: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top k of every query row.

    queries : (q, d), docs : (n, d), the same float dtype, unit rows (not checked);
    1 <= k <= n. Returns (indices (q, k) int64, scores (q, k) float32), best
    first, ties in index order. ``after_block(start, stop)`` runs after each
    block of documents is scored (``index_store`` releases memory-mapped pages).
    """
    if len(queries) == 1 and docs.shape[0] <= rows_per_block(k, 1, docs.itemsize, block_bytes):
        # One query over a corpus that fits one block, the course's usual case.
        best_idx, best_val = search_one_block(queries[0], docs, k)
        if after_block is not None:
            after_block(0, docs.shape[0])
        return best_idx[None, :], best_val[None, :]
    indices = np.empty((queries.shape[0], k), dtype=np.int64)
    scores = np.empty((queries.shape[0], k), dtype=np.float32)
    for qs in range(0, queries.shape[0], _QUERY_CHUNK):
        chunk = queries[qs : qs + _QUERY_CHUNK]
        # One query is a matrix-vector product, bound by memory bandwidth,
        # which BLAS's own threads already use in full: one range.
        workers = 1 if len(chunk) == 1 else (_BATCH_WORKERS or min(2, usable_cpus()))
        # Each thread holds one block of scores: together, at most block_bytes.
        rows = rows_per_block(k, len(chunk), docs.itemsize, block_bytes // workers)
        indices[qs : qs + len(chunk)], scores[qs : qs + len(chunk)] = scan_top_k(
            lambda: matmul_scorer(docs, chunk, rows), docs.shape[0], len(chunk), k, rows,
            workers=workers, after_block=after_block,
        )
    return indices, scores


def search_one_block(query: np.ndarray, docs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top k of one query over documents that fit one block: (k,) int64 indices, (k,) float32 scores.

    query (d,) and docs (n, d) of the same float dtype, unit rows (not
    checked); 1 <= k <= n. At N = 1e3 the product takes ~20 us, so every step
    around it counts: one product, one pass for the range test's lower end,
    and a selection (``top_k_one_row``) whose best score is the upper end.
    """
    scores = docs @ query
    # The minimum propagates NaN and every comparison with NaN is False: NaN,
    # -inf and cosines below the range all fail here, so the selection sees
    # no NaN. (The ufunc itself: ndarray.min adds a Python wrapper's call.)
    if not np.minimum.reduce(scores) >= -_SCORE_LIMIT:
        check_scores(scores[None, :])
    best_idx, best_val = top_k_one_row(scores, k)
    if not best_val[0] <= _SCORE_LIMIT:  # the best score is the maximum: +inf or above the range
        check_scores(scores[None, :])
    return best_idx, (best_val if best_val.dtype is _FLOAT32 else best_val.astype(np.float32))


def matmul_scorer(docs: np.ndarray, queries: np.ndarray, rows: int) -> BlockScorer:
    """Scores of blocks of ``docs`` (up to ``rows`` rows) against ``queries`` (q, d): one BLAS call per block.

    A matrix-vector product (gemv) for one query, a matrix product (gemm) for
    a batch, written straight into one buffer (b, q): one row per document,
    the layout BLAS writes fastest (a fifth faster than (q, b) at q = 64,
    measured). Rows of another dtype than the queries (float16, int8 codes)
    are first copied into a float32 buffer, which holds them exactly: NumPy's
    own float16 and integer products are many times slower than BLAS.
    """
    out = np.empty((rows, len(queries)), dtype=queries.dtype)
    queries_t = queries.T
    cast = np.empty((rows, docs.shape[1]), dtype=queries.dtype) if docs.dtype != queries.dtype else None

    def score(start: int, stop: int) -> np.ndarray:
        block_out = out[: stop - start]
        block = docs[start:stop]
        if cast is not None:
            block = cast[: stop - start]
            np.copyto(block, docs[start:stop], casting="unsafe")
        if len(queries) == 1:
            np.matmul(block, queries[0], out=block_out[:, 0])
        else:
            np.matmul(block, queries_t, out=block_out)
        return block_out

    return score


def scan_top_k(
    make_scorer: Callable[[], BlockScorer],
    n: int,
    n_queries: int,
    k: int,
    rows: int,
    *,
    workers: int | None = 1,
    after_block: Callable[[int, int], None] | None = None,
    limit: float | None = None,
    check: ScoreCheck | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top k of each query over documents ``0..n-1``, scored ``rows`` at a time.

    ``make_scorer()`` returns a ``BlockScorer`` (each thread gets its own, so
    scorers may keep buffers). ``workers`` threads each scan a contiguous range
    of documents (None: one per usable CPU, at most 2); their top k are merged
    at the end, ties still in index order. ``after_block(start, stop)`` runs
    after each block (e.g. to release the pages of a memory map).

    Every score must be a number in [-limit, limit] (default: a cosine,
    ``check_scores``' range); where one is not, ``check(scores (q, b),
    first_doc)`` is called and must raise (default: ``check_scores``, which
    names the documents).

    Returns (indices (q, k) int64, scores (q, k) float32), best first, ties in
    index order.
    """
    bounds = (_SCORE_LIMIT, _check_cosines) if limit is None else (limit, check)
    if workers is None:
        workers = min(2, usable_cpus())
    # Each range must hold at least k documents, and enough blocks to pay for a thread.
    workers = max(1, min(workers, n // max(k, rows * _MIN_BLOCKS_PER_WORKER)))
    if workers > 1 and _BLAS_THREADS is None:
        workers = 1  # threadpoolctl missing: several threads on a multi-threaded BLAS are slower
    if workers == 1:
        return _scan_range(make_scorer(), 0, n, k, rows, after_block, bounds)
    edges = np.linspace(0, n, workers + 1).astype(int)
    with _single_threaded_blas(), ThreadPoolExecutor(workers) as pool:
        parts = list(pool.map(
            lambda lo_hi: _scan_range(make_scorer(), lo_hi[0], lo_hi[1], k, rows, after_block, bounds),
            zip(edges[:-1], edges[1:]),
        ))
    # Columns in range order: equal scores keep index order in top_k_rows,
    # which breaks ties by column.
    pool_idx = np.concatenate([idx for idx, _ in parts], axis=1)
    pool_val = np.concatenate([val for _, val in parts], axis=1)
    cols, vals = top_k_rows(pool_val, k)
    return np.take_along_axis(pool_idx, cols, axis=1), vals


def _load_blas_controller():
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # it comes with scikit-learn, which sentence-transformers needs
        return None
    return ThreadpoolController


_BLAS_THREADS = _load_blas_controller()
_blas_controller = None


@contextlib.contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """BLAS limited to one thread inside the block: our own threads share the cores instead.

    The limit applies to the whole process while it lasts (BLAS has one
    setting), as in scikit-learn, which uses the same library the same way.
    """
    global _blas_controller
    if _blas_controller is None:
        # Looking up the loaded libraries takes milliseconds: once is enough.
        _blas_controller = _BLAS_THREADS()
    with _blas_controller.limit(limits=1, user_api="blas"):
        yield


def _scan_range(
    score: BlockScorer,
    lo: int,
    hi: int,
    k: int,
    rows: int,
    after_block: Callable[[int, int], None] | None,
    bounds: tuple[float, ScoreCheck],
) -> tuple[np.ndarray, np.ndarray]:
    """``scan_top_k`` over documents ``lo..hi-1`` in one thread."""
    # The first block gets a full top-k selection. It holds at least k
    # documents (rows >= k and hi - lo >= k).
    limit, check = bounds
    stop = min(hi, lo + rows)
    first = score(lo, stop)
    # min and max propagate NaN, and every comparison with NaN is False.
    if not (first.min() >= -limit and first.max() <= limit):
        check(first.T, lo)
    if stop == hi:  # one block (every small corpus): its top k is the answer
        if after_block is not None:
            after_block(lo, stop)
        best_idx, best_val = top_k_rows(np.ascontiguousarray(first.T), k, offset=lo)
        return best_idx, best_val.astype(np.float32, copy=False)
    running = _RunningTopK(*top_k_rows(np.ascontiguousarray(first.T), k, offset=lo), bounds)
    if after_block is not None:
        after_block(lo, stop)
    for start in range(stop, hi, rows):
        stop = min(hi, start + rows)
        running.add_block(score(start, stop), start)
        if after_block is not None:
            after_block(start, stop)
    best_idx, best_val = running.result()
    return best_idx, best_val.astype(np.float32, copy=False)


class _RunningTopK:
    """The k best documents of each query so far, as blocks arrive in index order.

    A document enters a query's top k only if it beats that query's k-th best
    score so far (equal is not enough: the document already kept has the
    lower index, and wins the tie). After the first blocks this bar is high,
    so one comparison pass over a block finds the few candidates. They wait
    in a list, and are merged into the top k only once there are about as
    many of them as kept scores: one merge per many blocks, not one per block.
    Waiting is safe: the bars only rise with each merge, so a bar that is
    out of date lets through more candidates, never fewer.
    """

    def __init__(self, best_idx: np.ndarray, best_val: np.ndarray, bounds: tuple[float, ScoreCheck]) -> None:
        self.best_idx, self.best_val = best_idx, best_val  # (q, k) each, rows best first
        self.limit, self.check = bounds
        self.pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (rows, indices, scores)
        self.n_pending = 0
        self._update_bars()

    def _update_bars(self) -> None:
        self.bars = self.best_val[:, -1].copy()  # (q,): each query's k-th best
        # One number to compare a whole block against: a contiguous pass with a
        # scalar is several times faster than broadcasting q bars over (b, q).
        self.lowest_bar = self.bars.min()

    def add_block(self, block_scores: np.ndarray, start: int) -> None:
        """Check and fold in a block of scores, (b, q): one row per document, documents ``start..``.

        Calls ``check`` (which raises, naming the documents) on NaN,
        infinite or out-of-range scores.
        """
        # The range test in one pass over the block instead of two: its
        # minimum catches NaN (min propagates it), -inf and scores below the
        # range. A score above it (or +inf) is above every bar, so it is among
        # the candidates, whose maximum catches it.
        if not block_scores.min() >= -self.limit:
            self.check(block_scores.T, start)
        rows, idx, val = _block_candidates(block_scores, self.bars, self.lowest_bar, start, self.best_idx.shape[1])
        if len(val) == 0:
            return
        if val.max() > self.limit:
            self.check(block_scores.T, start)
        self.pending.append((rows, idx, val))
        self.n_pending += len(val)
        if self.n_pending >= self.best_val.size:
            self._merge_pending()

    def _merge_pending(self) -> None:
        rows, idx, val = (np.concatenate(parts) for parts in zip(*self.pending))
        self.best_idx, self.best_val = _merge(self.best_idx, self.best_val, rows, idx, val)
        self.pending, self.n_pending = [], 0
        self._update_bars()

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        if self.pending:
            self._merge_pending()
        return self.best_idx, self.best_val


def _block_candidates(
    block_scores: np.ndarray, bars: np.ndarray, lowest_bar: float, start: int, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The entries of a (b, q) block that could enter a query's top k: (query rows, indices, scores).

    Within each query they come in index order (the merge relies on it).
    """
    q = block_scores.shape[1]
    flat = np.flatnonzero(block_scores > lowest_bar)
    if flat.size > _FEW_CANDIDATES * block_scores.size:
        # Many candidates: the block's own top k per query holds every possible winner.
        idx, val = top_k_rows(np.ascontiguousarray(block_scores.T), min(k, len(block_scores)), offset=start)
        return np.repeat(np.arange(q), idx.shape[1]), idx.ravel(), val.ravel()
    # divmod turns flat positions into (document, query), in document order.
    doc, rows = np.divmod(flat, q)
    val = block_scores.reshape(-1)[flat]
    above = val > bars[rows]  # each query against its own bar
    return rows[above], doc[above] + start, val[above]


def _descending_key(rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """uint64 keys that sort like (row ascending, value descending), exactly.

    The bits of a float32, read as an unsigned integer, sort like the float
    itself once negative numbers have all their bits flipped and positive
    ones only the sign bit (the IEEE 754 layout); flipping every bit of that
    reverses the order. ``+ 0.0`` turns -0.0 into 0.0 first, since the two
    are equal as floats but not as bits. The row goes in the high 32 bits.
    One sort on these keys replaces a two-key ``np.lexsort``, three times faster.
    """
    bits = (values.astype(np.float32, copy=False) + np.float32(0)).view(np.uint32)
    ascending = np.where(bits >> 31 == 1, ~bits, bits | np.uint32(0x80000000))
    return (rows.astype(np.uint64) << np.uint64(32)) | (~ascending).astype(np.uint64)


def _merge(
    best_idx: np.ndarray, best_val: np.ndarray, rows: np.ndarray, idx: np.ndarray, val: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The top k of each query's current best and its new candidates ``(rows, idx, val)``.

    ``best_idx``, ``best_val``: (q, k), each row best first, ties in index
    order. The candidates' indices are all higher than the kept ones, and
    within each query they come in index order.
    """
    q, k = best_idx.shape
    # Pool the current best (already in key order) and the candidates, and
    # sort the pool by (query, score descending). Equal scores stay in index
    # order without a third key: the sort is stable and the pool is already
    # in index order within each score. (A stable sort also runs fast over
    # the already sorted first part.)
    keys = np.concatenate([_descending_key(np.repeat(np.arange(q), k), best_val.ravel()), _descending_key(rows, val)])
    order = np.argsort(keys, kind="stable")
    # Each query's entries now sit together: keep the first k of each.
    per_query = np.bincount(rows, minlength=q) + k
    first = np.cumsum(per_query) - per_query
    keep = order[(first[:, None] + np.arange(k)).ravel()]
    pool_idx = np.concatenate([best_idx.ravel(), idx])
    pool_val = np.concatenate([best_val.ravel(), val])
    return pool_idx[keep].reshape(q, k), pool_val[keep].reshape(q, k)


def _merge_block(
    best_idx: np.ndarray, best_val: np.ndarray, block_scores: np.ndarray, start: int
) -> tuple[np.ndarray, np.ndarray]:
    """Fold one block of scores, (b, q), into the top k at once (what ``_RunningTopK`` does in steps).

    ``best_idx`` and ``best_val`` are (q, k), each row best first; the block's
    documents come after all those seen so far (indices from ``start``).
    """
    bars = best_val[:, -1]
    rows, idx, val = _block_candidates(block_scores, bars, bars.min(), start, best_idx.shape[1])
    if len(val) == 0:
        return best_idx, best_val
    return _merge(best_idx, best_val, rows, idx, val)
