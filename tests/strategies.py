"""Hypothesis strategies shared by the tests of search, scoring and quantization."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import rag_helpers as rh


@st.composite
def unit_corpus(draw, max_n: int = 60, max_d: int = 16, max_queries: int = 4):
    """(queries (q, d), docs (n, d)) unit float32 rows, sometimes with duplicate rows (exact ties)."""
    n = draw(st.integers(1, max_n))
    d = draw(st.integers(1, max_d))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    docs = rh.l2_normalize(rng.standard_normal((n, d)).astype(np.float32))
    if draw(st.booleans()):
        # Duplicate rows make exactly tied scores.
        docs = docs[rng.integers(0, max(1, n // 3), size=n)]
    queries = rh.l2_normalize(rng.standard_normal((draw(st.integers(1, max_queries)), d)).astype(np.float32))
    return queries, docs


def one_query_corpus(max_n: int = 60, max_d: int = 16):
    """(query (d,), docs (n, d)): ``unit_corpus`` with a single query."""
    return unit_corpus(max_n, max_d, max_queries=1).map(lambda pair: (pair[0][0], pair[1]))


@st.composite
def exact_corpus(draw, max_n: int = 60, max_d: int = 40, max_queries: int = 4):
    """Unit vectors with four entries of +-0.5: every dot product is a multiple of 1/4, in any summation order."""
    d = draw(st.integers(4, max_d))
    n = draw(st.integers(1, max_n))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))

    def vectors(count):
        out = np.zeros((count, d), dtype=np.float32)
        for row in out:
            row[rng.choice(d, 4, replace=False)] = rng.choice([-0.5, 0.5], 4)
        return out

    return vectors(draw(st.integers(1, max_queries))), vectors(n)


@st.composite
def tied_score_rows(draw, max_rows: int = 4, max_n: int = 300):
    """(q, n) float32 scores: few distinct levels (ties everywhere), sometimes sorted, sometimes +-0.0 and infinities."""
    q = draw(st.integers(1, max_rows))
    n = draw(st.integers(1, max_n))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    levels = draw(st.sampled_from([1, 3, 50, 10**6]))
    scores = (rng.integers(-levels, levels + 1, size=(q, n)) / levels).astype(np.float32)
    if draw(st.booleans()):
        scores = np.sort(scores, axis=1)  # rising: the best at the end
    if draw(st.booleans()):
        extras = np.float32([-0.0, np.inf, -np.inf])
        mask = rng.random((q, n)) < 0.05
        scores[mask] = rng.choice(extras, size=int(mask.sum()))
    return scores
