"""``rh.cosine_scores`` and ``rh.cosine_scores_loop``: notebook 03's functions, with their checks.

The algorithm is the course module's (``rag_helpers/scoring.py``, generated
from notebook 03): one matrix-vector product, ``docs @ query``, and the same
arithmetic as a plain Python loop. These public versions check their
arguments first (shapes, dimensions, finite unit queries), call the taught
function, and check the scores for signs of NaN or non-normalized documents,
then the documents' norms (rows shorter than 1 give cosines that look valid).
``tests/test_fast_paths_03_04.py`` checks that they give the taught results.
"""
from __future__ import annotations

import numpy as np

from .._infra.validation import as_float_array, describe_rows
from ..scoring import cosine_scores as taught_cosine_scores
from ..scoring import cosine_scores_loop as taught_cosine_scores_loop
from .vectors import UNIT_TOLERANCE, check_unit_rows

__all__ = ["cosine_scores", "cosine_scores_loop", "prepare_query_and_docs", "check_scores", "check_doc_norms"]


def prepare_query_and_docs(query: np.ndarray, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate a query (or batch of queries) against a document matrix.

    Returns ``(query, docs)`` as arrays of one floating dtype: the documents'
    own (float32 stays float32, so the big matrix is never copied), with the
    small query cast to match it.

    Checks: shapes, matching dimension, the query finite and unit length.
    The documents are not read here: NaN, infinite values and norms above 1
    show in their scores (``check_scores``); norms below 1 do not, and
    ``check_doc_norms`` reads them (``cosine_scores`` calls both; the blocked
    ``search`` trusts its matrix, see its docstring).
    """
    q = as_float_array(query, name="query")
    d = as_float_array(docs, name="docs", ndims=(2,))
    if d.dtype not in (np.float32, np.float64):
        d = d.astype(np.float32)
    if q.shape[-1] != d.shape[1]:
        raise ValueError(
            f"dimension mismatch: query vectors have {q.shape[-1]} values but documents have "
            f"{d.shape[1]} (query shape {q.shape}, docs shape {d.shape})"
        )
    check_unit_rows(q, name="query")
    return q.astype(d.dtype, copy=False), d


def check_scores(scores: np.ndarray, *, first_doc: int = 0) -> None:
    """Raise if scores show non-finite or non-normalized documents.

    A NaN or infinity anywhere in a document row always reaches its score, so
    this O(n) pass over the scores stands in for an O(n * d) pass over the
    documents. A cosine outside [-1, 1] means a document was not normalized.
    """
    limit = 1.0 + UNIT_TOLERANCE
    # Fast path, two passes that allocate nothing: min and max propagate NaN,
    # and every comparison with NaN is False, so NaN, infinities and
    # out-of-range cosines all fail this test. Only then do we find the rows.
    if scores.size == 0 or (scores.min() >= -limit and scores.max() <= limit):
        return
    finite = np.isfinite(scores)
    if not finite.all():
        bad_cols = np.flatnonzero(~finite.reshape(-1, scores.shape[-1]).all(axis=0)) + first_doc
        raise ValueError(
            f"docs has NaN or infinite values in row(s) {describe_rows(bad_cols)}: "
            "their scores would be NaN"
        )
    # Finite, yet the fast path failed: some cosine is outside [-1, 1].
    flat = np.abs(scores.reshape(-1, scores.shape[-1])).max(axis=0)
    bad_cols = np.flatnonzero(flat > limit) + first_doc
    raise ValueError(
        f"docs is not L2-normalized: row(s) {describe_rows(bad_cols)} give a cosine of "
        f"{float(flat[bad_cols[0] - first_doc]):.4g}, outside [-1, 1] "
        "(call rag_helpers.l2_normalize on the documents first)"
    )


def check_doc_norms(docs: np.ndarray) -> None:
    """Raise if a row of ``docs`` (n, d) has a norm more than ``UNIT_TOLERANCE`` away from 1.

    What the scores cannot show: a row shorter than 1 (a zero row, or
    vectors that were never normalized) gives cosines inside [-1, 1] that
    are simply too small, and ranks too low without a word. One pass over
    the matrix in its own dtype, about as long as the scores themselves.
    """
    squared = np.einsum("ij,ij->i", docs, docs)  # (n,) squared norms
    low, high = (1.0 - UNIT_TOLERANCE) ** 2, (1.0 + UNIT_TOLERANCE) ** 2
    if squared.min() >= low and squared.max() <= high:  # NaN fails too (and is said by check_scores first)
        return
    norms = np.sqrt(np.einsum("ij,ij->i", docs, docs, dtype=np.float64))  # exact, for the message
    bad = np.flatnonzero(np.abs(norms - 1.0) > UNIT_TOLERANCE)
    if bad.size == 0:  # float32 rounding only
        return
    raise ValueError(
        f"docs is not L2-normalized: row(s) {describe_rows(bad)} have norm {norms[bad[0]]:.4g} instead of 1, so "
        "their cosines come out too small and they rank too low (call rag_helpers.l2_normalize on the documents first)"
    )


def cosine_scores(query: np.ndarray, docs: np.ndarray) -> np.ndarray:
    """Cosine similarity of the query (or queries) with every document.

    Parameters
    ----------
    query : (d,) or (q, d) float, unit rows
    docs : (n, d) float, unit rows

    Returns
    -------
    (n,) float32 for one query, (q, n) float32 for a batch.

    Raises ``ValueError`` for a document row that is not unit length
    (within ``UNIT_TOLERANCE``) or holds NaN or infinite values, naming it.
    """
    q, d = prepare_query_and_docs(query, docs)
    scores = taught_cosine_scores(q, d)  # one BLAS call: (n, d) @ (d,) or (q, d) @ (d, n)
    check_scores(scores)
    check_doc_norms(d)
    return scores.astype(np.float32, copy=False)


def cosine_scores_loop(query: np.ndarray, docs: np.ndarray) -> np.ndarray:
    """The same scores as ``cosine_scores`` for one (d,) query, in pure Python.

    No NumPy in the loop: one multiply-add per number, interpreted. This is
    the baseline that shows what the matrix-vector product saves.

    Returns (n,) float32.
    """
    q, d = prepare_query_and_docs(query, docs)
    if q.ndim != 1:
        raise ValueError(f"cosine_scores_loop takes one (d,) query, got shape {q.shape}")
    # Python floats in, Python floats out: the taught loop, on lists.
    result = np.array(taught_cosine_scores_loop(q.tolist(), d.tolist()), dtype=np.float64)
    check_scores(result)
    check_doc_norms(d)
    return result.astype(np.float32)
