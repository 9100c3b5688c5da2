"""Ranking metrics: hit rate@k, recall@k, MRR and nDCG@k, over a set of queries.

Notation, for one query: the retriever's ranking is d_1, d_2, ..., d_L (best
first, no document twice); rel(d) >= 0 is the grade a person gave document d
(binary judgements: 1 for relevant, 0 otherwise; a document nobody graded
counts as 0); R = {d : rel(d) > 0} is the set of relevant documents.

    hit@k    = 1 if some d_r with r <= k is in R, else 0
    recall@k = |{r <= k : d_r in R}| / |R|
    RR@k     = 1 / r*, r* = the smallest r <= k with d_r in R; 0 if there is none
    DCG@k    = sum_{r=1..k} rel(d_r) / log2(r + 1)
    nDCG@k   = DCG@k / IDCG@k, IDCG@k = the DCG@k of the ideal ranking
               (every graded document, highest grade first)

Hit rate, MRR (mean reciprocal rank), recall and nDCG over a set of queries
are the means of these per-query values. A ranking shorter than k simply has
nothing relevant in its missing places.

nDCG here uses linear gain (the grade itself) and the log2(r + 1) discount:
the definition of Järvelin and Kekäläinen (2002), and what trec_eval's
``ndcg_cut.k`` and ranx's ``ndcg@k`` compute. Two differences from trec_eval:
trec_eval re-sorts a run by its scores (ties broken by document name,
descending) where these functions take the ranking in the order given, and
it judges negative grades as 0 where these functions refuse them. The
"Burges" variant (gain 2^rel - 1, used by some learning-to-rank libraries)
gives the same numbers for binary judgements, larger weight to high grades
otherwise.

Every function takes the rankings as a (q, L) integer array (from
``search``) or a list of q lists of ids (any hashable ids: ints, strings),
and the judgements as a list of q entries, each a set of relevant ids
(binary) or a dict id -> grade (graded). Each returns (q,) float64 per-query
values; ``.mean()`` gives the figure for the whole set. ``evaluation.evaluate``
computes all of them at several k at once.

Notebook 09 writes the four metrics for one ranking and a set of relevant
ids (``rag_helpers.evaluation``: ``hit_at_k``, ``recall_at_k``,
``reciprocal_rank``, ``ndcg_at_k``). This module is their fast path for many
queries (the grades looked up once into arrays, each metric a few array
operations), with checks and graded judgements; ``tests/test_fast_paths_09.py``
proves it gives the taught functions' numbers on binary judgements.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Hashable, Mapping, Sequence, Set
from dataclasses import dataclass

import numpy as np

from .._infra.validation import check_positive_int

__all__ = ["Judged", "judge", "hit_rate_at_k", "recall_at_k", "reciprocal_rank", "ndcg_at_k"]

#: q rankings, ids best first: a (q, L) int array or a list of q lists.
Rankings = np.ndarray | Sequence[Sequence[Hashable]]
#: q judgements: a set of relevant ids (binary) or a dict id -> grade (graded).
Relevance = Sequence[Set[Hashable] | Mapping[Hashable, float]]


@dataclass(frozen=True)
class Judged:
    """Rankings with their grades looked up, once; every metric is a few array operations on it.

    gains : (q, L) float64, ``gains[i, r]`` = the grade of query i's document
        at rank r + 1 (0 where it is not relevant, or where query i's ranking
        is shorter than L, the longest ranking).
    ideal : (q, M) float64, each query's positive grades sorted highest first,
        zero-padded (M = the most relevant documents any query has).
    n_relevant : (q,) int64, |R| for each query (always >= 1).
    """

    gains: np.ndarray
    ideal: np.ndarray
    n_relevant: np.ndarray

    @property
    def depth(self) -> int:
        """L, the length of the longest ranking."""
        return self.gains.shape[1]

    def check_k(self, k: object) -> int:
        """``k`` as an int, if 1 <= k <= the longest ranking; raise otherwise."""
        k = check_positive_int(k, "k")
        if k > self.depth:
            raise ValueError(
                f"k={k} but the rankings hold at most {self.depth} ids: the metric at {k} would be the "
                f"metric at {self.depth}; retrieve at least {k} documents per query")
        return k

    def hit_rate(self, k: int) -> np.ndarray:
        """(q,) float64, hit@k = 1 if some d_r with r <= k has rel(d_r) > 0, else 0."""
        k = self.check_k(k)
        return (self.gains[:, :k] > 0).any(axis=1).astype(np.float64)

    def recall(self, k: int) -> np.ndarray:
        """(q,) float64, recall@k = |{r <= k : rel(d_r) > 0}| / |R|."""
        k = self.check_k(k)
        return (self.gains[:, :k] > 0).sum(axis=1) / self.n_relevant

    def reciprocal_rank(self, k: int | None = None) -> np.ndarray:
        """(q,) float64, RR@k = 1 / min{r <= k : rel(d_r) > 0}, 0 if there is none; k=None: whole ranking."""
        k = self.depth if k is None else self.check_k(k)
        relevant = self.gains[:, :k] > 0
        first = relevant.argmax(axis=1)  # index of the first True (0 when there is none)
        return np.where(relevant.any(axis=1), 1.0 / (first + 1), 0.0)

    def ndcg(self, k: int) -> np.ndarray:
        """(q,) float64, nDCG@k = DCG@k / IDCG@k with DCG@k = sum_{r=1..k} rel(d_r) / log2(r + 1)."""
        k = self.check_k(k)
        discount = 1.0 / np.log2(np.arange(2, k + 2))  # rank r = 1..k -> 1 / log2(r + 1)
        dcg = self.gains[:, :k] @ discount
        ideal = self.ideal[:, :k]  # the best possible first k: highest grades first
        idcg = ideal @ discount[: ideal.shape[1]]
        return dcg / idcg


def judge(ranked: Rankings, relevance: Relevance) -> Judged:
    """Look up the grade of every ranked document, checking the input on the way.

    Parameters
    ----------
    ranked : (q, L) int array, or a list of q lists of ids, best first
    relevance : list of q sets of relevant ids, or of q dicts id -> grade

    Raises ``TypeError``/``ValueError`` naming the query (and the rank) at
    fault for: a ranking that is not a list of ids (a bare string, a float
    array of scores), a document listed twice in one ranking, judgements of
    a different length than the rankings, a grade that is negative, NaN or
    not a number, a query with no relevant document (recall and nDCG are
    undefined for it), and ids of another kind than the judgements' (int
    ids ranked, str ids judged: nothing would ever match).
    """
    rows = _ranking_rows(ranked)
    grades = _grade_dicts(relevance)
    if len(rows) != len(grades):
        raise ValueError(f"ranked has {len(rows)} queries but relevance has {len(grades)}: "
                         "give one set (or dict) of relevant ids per ranking")
    _check_same_id_kind(rows, grades)

    depth = max(len(row) for row in rows)
    gains = np.zeros((len(rows), depth), dtype=np.float64)
    for i, (row, graded) in enumerate(zip(rows, grades)):
        if len(set(row)) != len(row):
            raise ValueError(_duplicate_message(i, row))
        gains[i, : len(row)] = [graded.get(doc, 0.0) for doc in row]

    positive = [sorted((g for g in graded.values() if g > 0), reverse=True) for graded in grades]
    n_relevant = np.array([len(p) for p in positive], dtype=np.int64)
    ideal = np.zeros((len(rows), int(n_relevant.max())), dtype=np.float64)
    for i, p in enumerate(positive):
        ideal[i, : len(p)] = p
    return Judged(gains, ideal, n_relevant)


# ------------------------------------------------------------------ the metrics

def hit_rate_at_k(ranked: Rankings, relevance: Relevance, k: int) -> np.ndarray:
    """(q,) float64: 1.0 where a relevant document is among the first k, else 0.0.

    hit@k = 1 if some d_r with r <= k is relevant (rel(d_r) > 0), else 0.
    The mean over queries is the hit rate.
    """
    return judge(ranked, relevance).hit_rate(k)


def recall_at_k(ranked: Rankings, relevance: Relevance, k: int) -> np.ndarray:
    """(q,) float64: the fraction of the relevant documents found among the first k.

    recall@k = |{r <= k : rel(d_r) > 0}| / |{d : rel(d) > 0}|.
    """
    return judge(ranked, relevance).recall(k)


def reciprocal_rank(ranked: Rankings, relevance: Relevance, k: int | None = None) -> np.ndarray:
    """(q,) float64: 1 / (rank of the first relevant document); 0 if none is ranked (within k).

    RR@k = 1 / min{r <= k : rel(d_r) > 0}, or 0 when that set is empty;
    ``k=None`` looks at the whole ranking. The mean over queries is the MRR.
    """
    return judge(ranked, relevance).reciprocal_rank(k)


def ndcg_at_k(ranked: Rankings, relevance: Relevance, k: int) -> np.ndarray:
    """(q,) float64: normalized discounted cumulative gain, graded relevance, linear gain.

    DCG@k = sum_{r=1..k} rel(d_r) / log2(r + 1); nDCG@k = DCG@k / IDCG@k,
    where IDCG@k is the DCG@k of the ideal ranking (all graded documents,
    highest grade first). 1.0 means no reordering could do better in the
    first k. Equal to trec_eval's ``ndcg_cut.k`` and ranx's ``ndcg@k`` for
    a ranking without tied scores (see the module docstring).
    """
    return judge(ranked, relevance).ndcg(k)


# ----------------------------------------------------------------- input checks

def _ranking_rows(ranked: object) -> list[list]:
    """The rankings as q lists of ids."""
    if isinstance(ranked, np.ndarray):
        if ranked.ndim != 2:
            raise ValueError(f"ranked must be a (q, k) array, one row per query, got shape {ranked.shape}"
                             + (" (for one query, pass ranked[None, :])" if ranked.ndim == 1 else ""))
        if ranked.dtype.kind in "fcb":
            raise TypeError(f"ranked has dtype {ranked.dtype}: it must hold document ids "
                            "(did you pass scores instead of indices?)")
        rows = ranked.tolist()  # Python ints: hashing them is fast
    elif isinstance(ranked, (str, bytes)) or not isinstance(ranked, Sequence):
        raise TypeError(f"ranked must be a (q, k) array or a list of rankings, got {type(ranked).__name__}")
    else:
        rows = []
        for i, row in enumerate(ranked):
            if isinstance(row, np.ndarray) and row.ndim == 1 and row.dtype.kind not in "fcb":
                rows.append(row.tolist())
            elif isinstance(row, Sequence) and not isinstance(row, (str, bytes)):
                rows.append(list(row))
            else:
                raise TypeError(f"ranked[{i}] must be a list of document ids, got {type(row).__name__} "
                                f"{row!r:.60}" + (" (for one query, pass [ranking])" if i == 0 else ""))
    if not rows:
        raise ValueError("ranked is empty: give at least one query's ranking")
    if all(len(row) == 0 for row in rows):
        raise ValueError("every ranking is empty: there is nothing to evaluate")
    return rows


def _grade_dicts(relevance: object) -> list[dict]:
    """The judgements as q dicts id -> grade (float >= 0), each with a grade > 0."""
    if isinstance(relevance, (str, bytes, Mapping)) or not isinstance(relevance, Sequence):
        raise TypeError("relevance must be a list with one set (or dict id -> grade) of relevant ids "
                        f"per query, got {type(relevance).__name__}")
    dicts = []
    for i, judged in enumerate(relevance):
        if isinstance(judged, Mapping):
            graded = {}
            for doc, grade in judged.items():
                if isinstance(grade, bool):
                    grade = int(grade)
                if not isinstance(grade, numbers.Real) or not math.isfinite(grade) or grade < 0:
                    raise ValueError(f"relevance[{i}][{doc!r}] = {grade!r}: a grade must be a finite number >= 0")
                graded[doc] = float(grade)
        elif isinstance(judged, (Set, list, tuple, np.ndarray)):
            graded = {doc: 1.0 for doc in (judged.tolist() if isinstance(judged, np.ndarray) else judged)}
        else:
            raise TypeError(f"relevance[{i}] must be a set of relevant ids or a dict id -> grade, "
                            f"got {type(judged).__name__} {judged!r:.60}")
        if not any(g > 0 for g in graded.values()):
            raise ValueError(f"relevance[{i}] has no relevant document (no grade > 0): recall and nDCG "
                             "are undefined for it; leave the query out")
        dicts.append(graded)
    return dicts


def _id_kind(doc: object) -> str:
    if isinstance(doc, numbers.Integral) and not isinstance(doc, bool):
        return "int"
    return "str" if isinstance(doc, str) else type(doc).__name__


def _check_same_id_kind(rows: list[list], grades: list[dict]) -> None:
    """Refuse int ids ranked against str ids judged (or the reverse): nothing would ever match."""
    ranked_kinds = {_id_kind(doc) for row in rows for doc in row[:1]}
    judged_kinds = {_id_kind(doc) for graded in grades for doc in list(graded)[:1]}
    if ranked_kinds.isdisjoint(judged_kinds):
        raise TypeError(f"ranked holds {'/'.join(sorted(ranked_kinds))} ids but relevance holds "
                        f"{'/'.join(sorted(judged_kinds))} ids: no ranked document could ever be relevant")


def _duplicate_message(i: int, row: list) -> str:
    seen: dict = {}
    for position, doc in enumerate(row):
        if doc in seen:
            return (f"ranked[{i}] lists document {doc!r} twice (ranks {seen[doc] + 1} and {position + 1}): "
                    "a ranking cannot repeat a document")
        seen[doc] = position
    raise AssertionError("unreachable: called without a duplicate")
