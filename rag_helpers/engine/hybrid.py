"""Hybrid retrieval: fuse two rankings (say dense and BM25) into one.

Dense retrieval finds paraphrases; BM25 finds exact words (names, error
messages, function names). Fusing both often beats either. Two ways:

**Reciprocal rank fusion** (Cormack, Clarke and Büttcher, SIGIR 2009) uses
only the ranks, so the two scores need not be comparable:

    RRF(d) = sum over the rankings that contain d of 1 / (c + rank(d)),  rank 1 = best

A document missing from a ranking gets nothing from it. The constant c = 60
is the paper's value (and Elasticsearch's and OpenSearch's default): it
keeps the first few ranks from dominating, so a document ranked 5th by both
retrievers (2/65 = 0.0308) beats one ranked 1st by one and absent from the
other (1/61 = 0.0164). It is called ``constant`` here because ``k`` is the
number of results everywhere in this course.

**Weighted sum of normalized scores**: put each retriever's scores on [0, 1]
with min-max normalization, per query, over all documents, then mix:

    norm(s)_d = (s_d - min s) / (max s - min s)
    fused_d   = weight * norm(a)_d + (1 - weight) * norm(b)_d

If a query's scores are all equal (BM25 when no query word occurs
anywhere), they carry no preference and normalize to 0 everywhere.

Ties, in both: the lower document index first, the course's rule
(``np.argsort(-fused, kind="stable")``).

Notebook 09 writes both for one query (``rag_helpers.evaluation``: ``rrf``,
``min_max``, ``weighted_fusion``); the functions here check their arguments
and fuse many queries at once (``np.unique`` and ``np.bincount`` for RRF, one
array expression for the weighted sum), tested to give the same rankings.
"""
from __future__ import annotations

import numbers

import numpy as np

from .._infra.validation import as_float_array, check_k
from .topk import top_k_rows

__all__ = ["RRF_CONSTANT", "reciprocal_rank_fusion", "min_max_normalize", "weighted_fusion"]

#: c in 1 / (c + rank), from Cormack et al. (2009).
RRF_CONSTANT = 60.0


def reciprocal_rank_fusion(
    *rankings: np.ndarray, k: int, constant: float = RRF_CONSTANT
) -> tuple[np.ndarray, np.ndarray]:
    """Fuse rankings of document indices by reciprocal rank: ``(indices, rrf_scores)``.

    Parameters
    ----------
    *rankings : two (or more) rankings of document indices, best first, each
        (L_i,) for one query or (q, L_i) for q queries (e.g. the indices from
        ``search`` and from ``BM25Index.search``); lengths may differ.
    k : number of fused results, at most the number of different documents
        in each query's rankings (the longest L_i always fits).
    constant : c in 1 / (c + rank), > 0.

    Returns
    -------
    (k,) int64 indices and (k,) float64 fused scores for one query, (q, k)
    each for q queries; best first, ties broken by the lower index.
    """
    rows = _check_rankings(rankings)
    k = check_k(k, sum(r.shape[1] for r in rows), what="ids in all the rankings together")
    if isinstance(constant, bool) or not isinstance(constant, numbers.Real) or not 0 < constant < float("inf"):
        raise ValueError(f"constant must be a finite number > 0, got {constant!r}")

    # 1 / (c + rank) for ranks 1..L of each ranking: the same for every query.
    shares = [1.0 / (constant + np.arange(1, r.shape[1] + 1)) for r in rows]
    n_queries = rows[0].shape[0]
    indices = np.empty((n_queries, k), dtype=np.int64)
    fused_scores = np.empty((n_queries, k), dtype=np.float64)
    for i in range(n_queries):
        ids = np.concatenate([r[i] for r in rows])
        # unique() sorts the ids; bincount adds up each id's shares.
        docs, slot = np.unique(ids, return_inverse=True)
        if docs.size < k:
            raise ValueError(f"k={k} but the rankings of query {i} hold only {docs.size} different documents")
        fused = np.bincount(slot, weights=np.concatenate(shares))
        # Stable sort over ascending ids: equal scores keep the lower index first.
        best = np.argsort(-fused, kind="stable")[:k]
        indices[i], fused_scores[i] = docs[best], fused[best]
    if np.ndim(rankings[0]) == 1:
        return indices[0], fused_scores[0]
    return indices, fused_scores


def min_max_normalize(scores: np.ndarray) -> np.ndarray:
    """Scale each query's scores to [0, 1]: (s - min) / (max - min); constant scores become 0.

    ``scores``: (n,) or (q, n), finite. Returns float64 of the same shape.
    """
    s = as_float_array(scores, name="scores").astype(np.float64)
    if not np.isfinite(s).all():
        raise ValueError("scores has NaN or infinite values: they cannot be normalized")
    low = s.min(axis=-1, keepdims=True)
    spread = s.max(axis=-1, keepdims=True) - low
    # Where every score is equal, (s - low) is 0 and any non-zero divisor gives 0.
    return (s - low) / np.where(spread > 0, spread, 1.0)


def weighted_fusion(
    scores_a: np.ndarray, scores_b: np.ndarray, k: int, *, weight: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Fuse two score arrays: ``weight * norm(a) + (1 - weight) * norm(b)``, min-max per query.

    Parameters
    ----------
    scores_a, scores_b : (n,) or (q, n) finite scores of the same documents,
        higher is better (e.g. ``cosine_scores`` and ``BM25Index.scores``).
    k : number of results, 1 <= k <= n.
    weight : in [0, 1], the share of ``scores_a`` (1: a alone, 0: b alone).

    Returns
    -------
    (k,) int64 indices and (k,) float64 fused scores in [0, 1] for (n,)
    inputs, (q, k) each for (q, n); best first, ties in index order.
    """
    a = as_float_array(scores_a, name="scores_a")
    b = as_float_array(scores_b, name="scores_b")
    if a.shape != b.shape:
        raise ValueError(f"scores_a has shape {a.shape} but scores_b has {b.shape}: "
                         "they must score the same documents for the same queries")
    if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not 0 <= weight <= 1:
        raise ValueError(f"weight must be a number in [0, 1], got {weight!r}")
    k = check_k(k, a.shape[-1])
    fused = weight * min_max_normalize(a) + (1 - weight) * min_max_normalize(b)
    indices, values = top_k_rows(np.atleast_2d(fused), k)
    return (indices[0], values[0]) if a.ndim == 1 else (indices, values)


def _check_rankings(rankings: tuple) -> list[np.ndarray]:
    """The rankings as (q, L_i) int64 arrays; raise on anything that is not a ranking."""
    if len(rankings) < 2:
        raise TypeError(f"reciprocal_rank_fusion needs at least two rankings, got {len(rankings)}")
    rows = []
    for j, ranking in enumerate(rankings):
        r = np.asarray(ranking)
        if r.dtype.kind not in "iu":
            raise TypeError(f"ranking {j} has dtype {r.dtype}: it must hold document indices "
                            "(did you pass scores instead of indices?)")
        if r.ndim != np.ndim(rankings[0]) or r.ndim not in (1, 2):
            raise ValueError(f"ranking {j} has shape {r.shape}: every ranking must be (L,) for one query "
                             f"or (q, L) for q queries, all alike (ranking 0 has shape {np.shape(rankings[0])})")
        r = np.atleast_2d(r).astype(np.int64, copy=False)
        if r.shape[0] != len(np.atleast_2d(rankings[0])):
            raise ValueError(f"ranking {j} has {r.shape[0]} queries but ranking 0 has "
                             f"{len(np.atleast_2d(rankings[0]))}")
        if r.shape[1] == 0:
            raise ValueError(f"ranking {j} is empty")
        if (r < 0).any():
            query, rank = np.argwhere(r < 0)[0]
            raise ValueError(f"ranking {j} has a negative index ({r[query, rank]}) for query {query} at rank "
                             f"{rank + 1}: indices are rows of the document list (is it padding for a missing hit?)")
        ordered = np.sort(r, axis=1)
        repeated = ordered[:, 1:] == ordered[:, :-1]
        if repeated.any():
            query, position = np.argwhere(repeated)[0]
            raise ValueError(f"ranking {j} lists document {ordered[query, position]} twice for query {query}: "
                             "a ranking cannot repeat a document")
        rows.append(r)
    return rows
