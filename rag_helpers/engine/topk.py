"""``rh.top_k`` with its checks, and ``top_k_rows``, the batched top-k behind search.

The definition is notebook 04's (``rag_helpers/topk.py``): ``top_k(s, k)`` is
``np.argsort(-s, kind="stable")[:k]``, so equal scores come out in index
order. ``rh.top_k`` checks its arguments, then calls that taught function,
or, at large n, ``top_k_rows``: the notebook's ``top_k_partition`` (find the
k winners in O(n) with ``np.argpartition``, repair a tie at the cut, sort
only the k) for a whole (q, n) matrix at once, without negating a copy of
the scores. One row (one query: ``search``'s usual case) goes to
``top_k_one_row`` instead: a threshold from a sorted sample of the scores,
then a stable sort of the few scores above it, in a handful of NumPy calls.
``tests/test_fast_paths_03_04.py`` and ``tests/test_small_n_search.py``
check that all of them give the taught function's answer, ties included.
"""
from __future__ import annotations

import math
from typing import Literal

import numpy as np

from .._infra.validation import as_float_array, check_k
from ..topk import top_k as taught_top_k

__all__ = ["top_k", "top_k_rows", "top_k_one_row"]

# Below this many scores a full sort is as fast as partitioning.
_PARTITION_MIN_N = 2048
# top_k_one_row's sample of the scores holds at least this many times k.
_SAMPLE_PER_K = 4
# np.nonzero returns intp indices: int64 wherever NumPy 2 runs on 64 bits.
_INTP_IS_INT64 = np.dtype(np.intp) == np.dtype(np.int64)


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
    method : "argsort" sorts everything; "argpartition" selects first (a
        threshold from a partition, or from a sorted sample at large n, then
        sorts only the scores above it); "auto" picks the faster one for this
        n and k. All three give the same answer.

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
    """Exact top-k of every row of a (q, n) score matrix, with argpartition (one row: ``top_k_one_row``).

    Returns ``(indices, values)``, both (q, k), each row best first, ties in
    index order; ``offset`` is added to the indices (for blocks of a larger
    corpus). Raises ``ValueError`` on NaN. Assumes ``1 <= k <= n``.
    """
    q, n = scores.shape
    if q == 1:
        # One query, the common case: a 1-D row, which NumPy runs with less
        # overhead per call (it counts at small n), and a sample's threshold.
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
    """``top_k_rows`` for one row: (n,) scores -> (k,) indices and (k,) values. Raises on NaN."""
    top = scores.max()  # NaN if any score is NaN: max propagates it
    if top != top:
        raise ValueError("scores has NaN in row 0: a NaN has no rank")
    return top_k_one_row(scores, k)


def top_k_one_row(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top k of one row of scores known to hold no NaN: (k,) int64 indices, (k,) values.

    Best first, ties in index order: ``np.argsort(-scores, kind="stable")[:k]``
    and the scores there. The caller checks for NaN (``search`` already has,
    with its range test); a NaN here would be left out, not raised.

    Few NumPy calls, since at n = 1e3 each costs about as much as its work:
    find a threshold at or below the k-th best score, keep every score at or
    above it (in index order), and stable-sort only those by score. Below the
    threshold nothing can be among the k best, and every tie at the cut is
    kept, so the stable sort settles ties exactly as the taught function does.
    """
    n = scores.shape[0]
    if k == n:
        candidates = np.arange(n)
    else:
        # The k-th best of every step-th score is at most the k-th best of
        # all, so it is a threshold too, found by sorting n / step scores
        # (NumPy's vectorized sort: at n = 1e3 faster than a partition of
        # them, and than a partition of all n). About k * step scores pass it
        # (all of them if all are tied); step ~ sqrt(n / k) balances the two
        # sorts, and the sample keeps at least 4k scores, or the threshold
        # falls too low. Measured at n = 1e3: 8 us for k = 5 (step 14), 12 us
        # for k = 100 (step 2), against 11 and 16 with np.partition of all n.
        step = min(n // (_SAMPLE_PER_K * k), math.isqrt(n // k))
        # A copy sorted in place: the methods skip np.sort's and
        # np.partition's Python wrappers (a microsecond each at this size).
        if step >= 2:
            sample = scores[::step].copy()
            sample.sort()
            threshold = sample[-k]
        else:
            sample = scores.copy()
            sample.partition(n - k)
            threshold = sample[n - k]
        candidates = (scores >= threshold).nonzero()[0]
    values = scores[candidates]
    order = (-values).argsort(kind="stable")[:k]
    indices = candidates[order]
    return (indices if _INTP_IS_INT64 else indices.astype(np.int64)), values[order]
