"""Evaluate a retriever: every metric of ``metrics.py`` at several k, per query and on average.

    result = evaluate(ranked_ids, relevance, ks=(1, 3, 5, 10))
    result.mean["recall@5"]        # one number for the whole set of queries
    result.per_query["ndcg@10"]    # (q,) float64, to look at the failures one by one
    print(result.table())          # k down the side, the metrics across

The grades are looked up once (``metrics.judge``); each metric at each k is
then a few array operations, so sweeping k, or a fusion weight, stays cheap.
``evaluate_retriever`` also runs the retriever, once, and times it.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .._infra.validation import check_positive_int
from .metrics import Rankings, Relevance, judge

__all__ = ["METRICS", "EvaluationResult", "evaluate", "evaluate_retriever"]

#: The metrics computed at each k, with the column titles of ``table()``.
METRICS: dict[str, str] = {"hit_rate": "hit rate", "recall": "recall", "mrr": "MRR", "ndcg": "nDCG"}


@dataclass(frozen=True)
class EvaluationResult:
    """Per-query and mean metrics at each k.

    ks : the cut-offs, ascending.
    per_query : ``"recall@5"`` -> (q,) float64, one value per query, for
        every metric in ``METRICS`` and every k.
    seconds : the wall time of the retrieval (``evaluate_retriever``), else None.
    """

    ks: tuple[int, ...]
    per_query: dict[str, np.ndarray]
    seconds: float | None = None

    @property
    def n_queries(self) -> int:
        return len(next(iter(self.per_query.values())))

    @property
    def mean(self) -> dict[str, float]:
        """``"recall@5"`` -> the mean over the queries."""
        return {name: float(values.mean()) for name, values in self.per_query.items()}

    @property
    def ms_per_query(self) -> float | None:
        return None if self.seconds is None else self.seconds * 1e3 / self.n_queries

    def __getitem__(self, name: str) -> float:
        """``result["mrr@10"]``: the mean of one metric."""
        if name not in self.per_query:
            raise KeyError(f"{name!r}: choose from {', '.join(self.per_query)}")
        return float(self.per_query[name].mean())

    def table(self, digits: int = 3) -> str:
        """The means as a markdown table: one row per k, one column per metric."""
        header = ["k", *METRICS.values()]
        rows = [[str(k), *(f"{self[f'{m}@{k}']:.{digits}f}" for m in METRICS)] for k in self.ks]
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" for _ in header) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        caption = f"{self.n_queries} queries"
        if self.seconds is not None:
            caption += f", retrieval {self.seconds * 1e3:.1f} ms ({self.ms_per_query:.3f} ms per query)"
        return "\n".join(lines) + f"\n\n{caption}"

    def __str__(self) -> str:
        return self.table()

    def _repr_markdown_(self) -> str:  # Jupyter shows the table
        return self.table()


def evaluate(ranked_ids: Rankings, relevance: Relevance, ks: Sequence[int] = (1, 3, 5, 10)) -> EvaluationResult:
    """Hit rate, recall, MRR and nDCG at every k in ``ks``, per query and on average.

    Parameters
    ----------
    ranked_ids : (q, L) int array (e.g. the indices from ``search``) or a list
        of q lists of ids, best first. L must be at least ``max(ks)``.
    relevance : list of q sets of relevant ids, or q dicts id -> grade.
    ks : the cut-offs, each 1 <= k <= L.

    The formulas are in ``rag_helpers.engine.metrics``; ``mrr@k`` is the mean
    reciprocal rank with a cut-off at k (0 for a query whose first relevant
    document is ranked below k).
    """
    ks = _check_ks(ks)
    judged = judge(ranked_ids, relevance)
    per_query: dict[str, np.ndarray] = {}
    for k in ks:
        per_query[f"hit_rate@{k}"] = judged.hit_rate(k)
        per_query[f"recall@{k}"] = judged.recall(k)
        per_query[f"mrr@{k}"] = judged.reciprocal_rank(k)
        per_query[f"ndcg@{k}"] = judged.ndcg(k)
    return EvaluationResult(ks, per_query)


def evaluate_retriever(
    retrieve_batch: Callable[[list, int], Rankings],
    queries: Sequence,
    relevance: Relevance,
    ks: Sequence[int] = (1, 3, 5, 10),
) -> EvaluationResult:
    """Run ``retrieve_batch(queries, max(ks))`` once, time it, and ``evaluate`` its rankings.

    ``retrieve_batch(list_of_queries, k)`` must return the (q, k) ids of the
    k best documents for each query, best first; for a function that also
    returns scores, wrap it: ``lambda qs, k: index.search(qs, k)[0]``.
    The time covers that one call, whatever it does (embedding the queries
    included): call it once beforehand if it loads something on first use.
    """
    if isinstance(queries, (str, bytes)) or not isinstance(queries, Sequence):
        raise TypeError(f"queries must be a list, got {type(queries).__name__}")
    if len(queries) != len(relevance):
        raise ValueError(f"{len(queries)} queries but {len(relevance)} relevance entries: give one per query")
    ks = _check_ks(ks)
    start = time.perf_counter()
    ranked = retrieve_batch(list(queries), max(ks))
    seconds = time.perf_counter() - start
    if isinstance(ranked, tuple):
        raise TypeError("retrieve_batch returned a tuple: it must return only the (q, k) ids, "
                        "e.g. lambda qs, k: index.search(qs, k)[0]")
    if len(ranked) != len(queries):
        raise ValueError(f"retrieve_batch returned {len(ranked)} rankings for {len(queries)} queries")
    result = evaluate(ranked, relevance, ks)
    return EvaluationResult(result.ks, result.per_query, seconds)


def _check_ks(ks: Sequence[int]) -> tuple[int, ...]:
    if isinstance(ks, (str, bytes)) or not isinstance(ks, (Sequence, np.ndarray)):
        raise TypeError(f"ks must be a list of cut-offs, e.g. (1, 3, 5, 10), got {type(ks).__name__}")
    checked = sorted({check_positive_int(k, "each k in ks") for k in ks})
    if not checked:
        raise ValueError("ks is empty: give at least one cut-off")
    return tuple(checked)
