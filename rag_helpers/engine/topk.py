"""``rh.top_k`` with its checks, and ``top_k_rows``, the batched top-k behind search.

The definition is notebook 04's (``rag_helpers/topk.py``): ``top_k(s, k)`` is
``np.argsort(-s, kind="stable")[:k]``, so equal scores come out in index
order. ``rh.top_k`` checks its arguments, then calls that taught function,
or, at large n, ``top_k_rows``: the notebook's ``top_k_partition`` (find the
k winners in O(n) with ``np.argpartition``, repair a tie at the cut, sort
only the k) for a whole (q, n) matrix at once, without negating a copy of
the scores. ``tests/test_fast_paths_03_04.py`` checks that both give the
taught function's answer, ties included.
"""
from __future__ import annotations

from typing import Literal

import numpy as np

from .._infra.validation import as_float_array, check_k
from ..topk import top_k as taught_top_k

__all__ = ["top_k", "top_k_rows"]

# Below this many scores a full sort is as fast as partitioning.
_PARTITION_MIN_N = 2048


def top_k(
    scores: np.ndarray,
    k: int,
    *,
    method: Literal["auto", "argsort", "argpartition"] = "auto",
) -> np.ndarray:
    """Indices of the ``k`` highest scores, best first; ties in index order.

    Parameters
    ----------
    scores : (n,) float
        May hold infinities, not NaN (a NaN has no rank).
    k : int, 1 <= k <= n
    method : "argsort" sorts everything; "argpartition" partitions first;
        "auto" picks the faster one for this n and k. All three give the
        same answer.

    Returns
    -------
    (k,) int64 indices into ``scores``.
    """
    s = as_float_array(scores, name="scores", ndims=(1,))
    k = check_k(k, s.shape[0], what="scores")
    if method not in ("auto", "argsort", "argpartition"):
        raise ValueError(f"method must be 'auto', 'argsort' or 'argpartition', got {method!r}")
    if method == "argsort" or (method == "auto" and not _partition_pays(s.shape[0], k)):
        if np.isnan(s).any():
            raise ValueError(f"scores has NaN at position(s) {np.flatnonzero(np.isnan(s))[:5].tolist()}")
        return taught_top_k(s, k)
    indices, _ = top_k_rows(s[None, :], k)
    return indices[0]


def _partition_pays(n: int, k: int) -> bool:
    return n >= _PARTITION_MIN_N and k <= n // 8


def top_k_rows(scores: np.ndarray, k: int, *, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of every row of a (q, n) score matrix, with argpartition.

    Returns ``(indices, values)``, both (q, k), each row best first, ties in
    index order; ``offset`` is added to the indices (for blocks of a larger
    corpus). Raises ``ValueError`` on NaN. Assumes ``1 <= k <= n``.
    """
    q, n = scores.shape
    if q == 1:
        # One query, the common case: the same steps on a 1-D row, which
        # NumPy runs with less overhead per call (it counts at small n).
        indices, values = _top_k_one_row(scores[0], k)
        return indices[None, :] + offset, values[None, :]
    if k == n:
        part = np.broadcast_to(np.arange(n), (q, n)).copy()
    else:
        # The k largest land, unordered, in the last k slots. NaN sorts above
        # everything, so any NaN in a row would be among them.
        part = np.argpartition(scores, n - k, axis=1)[:, n - k :]
    # rows (q, 1) broadcasts against (q, k) column indices: each row picks its
    # own columns. (The same as np.take_along_axis(..., axis=1), with less
    # overhead per call, which counts on small inputs.)
    rows = np.arange(q)[:, None]
    values = scores[rows, part]
    if np.isnan(values).any():
        row = int(np.flatnonzero(np.isnan(values).any(axis=1))[0])
        raise ValueError(f"scores has NaN in row {row}: a NaN has no rank")

    if k < n:
        # argpartition breaks ties at the k-th value arbitrarily; the contract
        # wants the lowest indices. Fix the rows where the cut splits a tie.
        threshold = values.min(axis=1)
        ties_total = np.count_nonzero(scores == threshold[:, None], axis=1)
        ties_kept = np.count_nonzero(values == threshold[:, None], axis=1)
        for r in np.flatnonzero(ties_total > ties_kept):
            above = np.flatnonzero(scores[r] > threshold[r])
            tied = np.flatnonzero(scores[r] == threshold[r])[: k - above.size]
            part[r] = np.concatenate([above, tied])
            values[r] = scores[r, part[r]]

    # Sort the k winners: by score descending, then by index ascending.
    order = np.lexsort((part, -values), axis=1)
    return part[rows, order].astype(np.int64, copy=False) + offset, values[rows, order]


def _top_k_one_row(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``top_k_rows`` for one row: (n,) scores -> (k,) indices and (k,) values."""
    n = scores.shape[0]
    part = np.arange(n) if k == n else np.argpartition(scores, n - k)[n - k :]
    values = scores[part]
    threshold = values.min()  # NaN if any score is NaN: argpartition puts NaN among the k largest
    if threshold != threshold:
        raise ValueError("scores has NaN in row 0: a NaN has no rank")
    # Every score left out is <= threshold; more than k at or above it means
    # the cut split a tie, and the lowest indices must win it.
    if k < n and np.count_nonzero(scores >= threshold) > k:
        above = np.flatnonzero(scores > threshold)
        tied = np.flatnonzero(scores == threshold)[: k - above.size]
        part = np.concatenate([above, tied])
        values = scores[part]
    order = np.lexsort((part, -values))
    return part[order].astype(np.int64, copy=False), values[order]
