"""The optimized path of ``rag_helpers.search``: exact top-k over a large matrix, in blocks.

Notebooks 03 and 04 teach search as two lines: ``scores = docs @ q`` and
``np.argsort(-scores, kind="stable")[:k]``. That is what ``retrieval.search_simple``
does, and what this module computes too, to the last bit, but faster and
with bounded memory: the documents are scored block by block, and each block
is folded into the running top k with as little work as possible.

Nothing here checks its inputs: ``retrieval.search`` does that once.
"""
from __future__ import annotations

import numpy as np

from .scoring import check_scores
from .topk import top_k_rows

__all__ = ["search_blocked", "SCORE_BLOCK_BYTES"]

#: Most bytes of scores held at once by ``search``. A batch of 64 queries over
#: a million documents would need a (64, 1_000_000) score matrix (256 MB);
#: blocks of documents keep it to this size, whatever q and n are.
#: Small blocks are also faster: a block of scores still sits in the CPU cache
#: when the checks and the top-k selection read it back, right after the
#: matrix product wrote it (see benchmarks/README.md for the measurements).
SCORE_BLOCK_BYTES = 8 * 2**20
# Most documents in one block, whatever block_bytes allows: for a single
# query, a block's scores (256 KiB) then stay in the CPU's fastest cache
# between the product that writes them and the checks and top-k that read them.
_MAX_BLOCK_ROWS = 65536
# Up to this fraction of a block's scores, _merge_block sorts the candidates
# themselves; above it, a partition of the block is cheaper (measured).
_FEW_CANDIDATES = 1 / 32
# Queries scored together: enough to make the matrix product efficient,
# few enough that a block still holds many documents.
_QUERY_CHUNK = 256


def search_blocked(
    queries: np.ndarray, docs: np.ndarray, k: int, block_bytes: int = SCORE_BLOCK_BYTES
) -> tuple[np.ndarray, np.ndarray]:
    """Top k of every query row.

    queries : (q, d), docs : (n, d), the same float dtype, unit rows (not checked);
    1 <= k <= n. Returns (indices (q, k) int64, scores (q, k) float32), best
    first, ties in index order.
    """
    indices = np.empty((queries.shape[0], k), dtype=np.int64)
    scores = np.empty((queries.shape[0], k), dtype=np.float32)
    for qs in range(0, queries.shape[0], _QUERY_CHUNK):
        chunk = queries[qs : qs + _QUERY_CHUNK]
        indices[qs : qs + len(chunk)], scores[qs : qs + len(chunk)] = _search_chunk(
            chunk, docs, k, block_bytes
        )
    return indices, scores


def _search_chunk(
    queries: np.ndarray, docs: np.ndarray, k: int, block_bytes: int
) -> tuple[np.ndarray, np.ndarray]:
    n = docs.shape[0]
    rows_per_block = max(k, min(_MAX_BLOCK_ROWS, block_bytes // (docs.itemsize * queries.shape[0])))
    best_idx: np.ndarray | None = None
    best_val: np.ndarray | None = None
    # Each block is scored by one BLAS call: a matrix-vector product (gemv)
    # for one query, a matrix product (gemm) for a batch.
    for start in range(0, n, rows_per_block):
        block = docs[start : start + rows_per_block]
        if best_idx is None:
            # The first block gets a full top-k selection, which partitions
            # one row of scores per query: (q, b). It holds at least k
            # documents (rows_per_block >= k and n >= k).
            block_scores = (block @ queries[0])[None, :] if len(queries) == 1 else queries @ block.T
            check_scores(block_scores, first_doc=start)
            best_idx, best_val = top_k_rows(block_scores, k, offset=start)
        else:
            # Later blocks are only compared with the k-th best so far, so
            # they take the layout BLAS writes fastest: one row per document,
            # (b, q), a fifth faster than (q, b) (measured at q = 64).
            block_scores = (block @ queries[0])[:, None] if len(queries) == 1 else block @ queries.T
            check_scores(block_scores.T, first_doc=start)
            best_idx, best_val = _merge_block(best_idx, best_val, block_scores, start)
    return best_idx, best_val.astype(np.float32, copy=False)


def _merge_block(
    best_idx: np.ndarray, best_val: np.ndarray, block_scores: np.ndarray, start: int
) -> tuple[np.ndarray, np.ndarray]:
    """Fold a block of scores, (b, q): one row per document, into the running top k of each query.

    ``best_idx`` and ``best_val`` are (q, k), each row best first; the block's
    documents come after all those seen so far (indices from ``start``).
    """
    q, k = best_idx.shape
    # Why not select the block's own top k first? Because most of its scores
    # cannot make it: a document enters a row's top k only if it beats that
    # row's k-th best score so far. (Equal is not enough: the document already
    # kept has the lower index, and wins the tie.) After the first blocks this
    # bar is high, so one comparison pass over the block finds the few
    # candidates, several times faster than a partition of every row.
    candidates = block_scores > best_val[:, -1]  # (b, q) against (q,): each column its own bar
    n_candidates = np.count_nonzero(candidates)
    if n_candidates == 0:
        return best_idx, best_val
    if n_candidates > _FEW_CANDIDATES * block_scores.size:
        # Many candidates (e.g. scores that rise with the index): sorting them
        # all would cost more than selecting the block's own top k per row,
        # a smaller pool that still holds every possible winner.
        idx, val = top_k_rows(block_scores.T, min(k, len(block_scores)), offset=start)
        rows = np.repeat(np.arange(q), idx.shape[1])
        idx, val = idx.ravel(), val.ravel()
    else:
        # (flatnonzero on the flat mask is several times faster than nonzero
        # on the 2-D one; divmod turns flat positions into (document, query).)
        doc, rows = np.divmod(np.flatnonzero(candidates), q)
        idx, val = doc + start, block_scores[doc, rows]

    # Pool each row's current best with its new candidates; sort the pool by
    # row, then by score (high first); keep the first k entries of each row.
    # Equal scores must stay in index order, and they do without a third sort
    # key: lexsort is stable, and the pool is already in index order within
    # each score (the current best, ties by index, then the new candidates,
    # whose indices are all higher, in document order).
    pool_rows = np.concatenate([np.repeat(np.arange(q), k), rows])
    pool_idx = np.concatenate([best_idx.ravel(), idx])
    pool_val = np.concatenate([best_val.ravel(), val])
    order = np.lexsort((-pool_val, pool_rows))
    row_counts = np.bincount(pool_rows, minlength=q)
    row_start = np.cumsum(row_counts) - row_counts
    keep = order[(row_start[:, None] + np.arange(k)).ravel()]
    return pool_idx[keep].reshape(q, k), pool_val[keep].reshape(q, k)
