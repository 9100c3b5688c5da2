"""Every fast path behind notebook 09's steps gives the taught function's results on valid input.

The taught functions are ``rag_helpers.evaluation`` (generated from the notebook's ``#| export``
cells): one question at a time, plain Python. The engine computes the same numbers for many
questions at once (``engine.metrics``'s judged arrays, ``engine.bm25``'s sparse matrix,
``engine.hybrid``'s ``np.unique``/``np.bincount``), and ``engine.abstention`` checks, then calls
the taught rule.
"""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rag_helpers import evaluation as taught
from rag_helpers.engine import abstention, bm25, hybrid, metrics
from rag_helpers.engine.evaluation import evaluate

PAIRS = [
    (metrics.hit_rate_at_k, taught.hit_at_k),
    (metrics.recall_at_k, taught.recall_at_k),
    (metrics.reciprocal_rank, taught.reciprocal_rank),
    (metrics.ndcg_at_k, taught.ndcg_at_k),
]


@st.composite
def judged_rankings(draw):
    """(q rankings of distinct ids, all of one length; q non-empty sets of relevant ids; k)."""
    n_docs = draw(st.integers(1, 30))
    depth = draw(st.integers(1, n_docs))
    q = draw(st.integers(1, 6))
    rankings = [draw(st.permutations(range(n_docs)))[:depth] for _ in range(q)]
    # Relevant ids may lie outside the ranking (never retrieved) or even outside the corpus.
    relevant = [draw(st.sets(st.integers(0, n_docs + 5), min_size=1, max_size=8)) for _ in range(q)]
    return rankings, relevant, draw(st.integers(1, depth))


@settings(max_examples=200, deadline=None)
@given(judged_rankings())
def test_metrics_fast_path_equals_the_taught_metrics(case):
    rankings, relevant, k = case
    for fast, slow in PAIRS:
        want = [slow(r, rel, k) for r, rel in zip(rankings, relevant)]
        np.testing.assert_allclose(fast(np.array(rankings), relevant, k), want, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(fast(rankings, relevant, k), want, rtol=1e-12, atol=1e-12)


@settings(max_examples=100, deadline=None)
@given(judged_rankings())
def test_evaluate_means_equal_mean_metrics(case):
    rankings, relevant, _ = case
    ks = tuple(sorted({1, len(rankings[0])}))
    want = taught.mean_metrics(rankings, relevant, ks)
    got = evaluate(np.array(rankings), relevant, ks).mean
    assert set(got) == set(want)
    for name in want:
        assert abs(got[name] - want[name]) < 1e-12, name


WORDS = ["jupiter", "planet", "largest", "the", "a", "storm", "red", "spot", "venus", "hot", "py_value", "x1"]


@st.composite
def corpus_and_query(draw):
    texts = [" ".join(draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=15))) + draw(st.sampled_from(["", ".", "!?"]))
             for _ in range(draw(st.integers(1, 20)))]
    query = " ".join(draw(st.lists(st.sampled_from(WORDS + ["unknown"]), min_size=1, max_size=6)))
    k1 = draw(st.sampled_from([0.0, 0.9, 1.2, 1.5, 3.0]))
    b = draw(st.sampled_from([0.0, 0.5, 0.75, 1.0]))
    return texts, query, k1, b, draw(st.integers(1, len(texts)))


@settings(max_examples=200, deadline=None)
@given(corpus_and_query())
def test_bm25_index_gives_the_taught_scores_and_top_k(case):
    texts, query, k1, b, k = case
    want = taught.BM25(texts, k1=k1, b=b).scores(query)          # (n,) float64, plain Python
    index = bm25.BM25Index(k1=k1, b=b).fit(texts)                 # sparse float32 fast path
    np.testing.assert_allclose(index.scores(query), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(index.scores([query, query])[1], want, rtol=1e-5, atol=1e-6)
    indices, values = index.search(query, k)
    # The same top k: the k best scores, and, where no two scores are within float32 rounding of
    # each other without being equal, the very same indices in the same order.
    np.testing.assert_allclose(want[indices], np.sort(want)[::-1][:k], rtol=1e-5, atol=1e-6)
    # The ranking of its own (float32) scores, ties in index order. Scores equal in float64 can
    # differ in their last float32 bit (the sums run in another order), so the exact order is
    # compared with the taught one only where the float32 scores keep the float64 ties and gaps.
    got = index.scores(query)
    assert indices.tolist() == np.argsort(-got, kind="stable")[:k].tolist()
    gaps = np.abs(np.subtract.outer(want, want))
    same_ties = np.array_equal(np.subtract.outer(want, want) == 0, np.subtract.outer(got, got) == 0)
    if same_ties and not ((gaps > 0) & (gaps < 1e-4)).any():
        assert indices.tolist() == np.argsort(-want, kind="stable")[:k].tolist()


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_bm25_tokenize_is_the_taught_tokenize(text):
    assert bm25.tokenize(text) == taught.tokenize(text)


@st.composite
def two_rankings(draw):
    n_docs = draw(st.integers(2, 40))
    q = draw(st.integers(1, 4))
    la, lb = draw(st.integers(1, n_docs)), draw(st.integers(1, n_docs))
    a = np.array([draw(st.permutations(range(n_docs)))[:la] for _ in range(q)])
    b = np.array([draw(st.permutations(range(n_docs)))[:lb] for _ in range(q)])
    return a, b, draw(st.integers(1, max(la, lb))), draw(st.sampled_from([1, 10, 60.0]))


@settings(max_examples=200, deadline=None)
@given(two_rankings())
def test_rrf_fast_path_gives_the_taught_ranking(case):
    a, b, k, c = case
    indices, scores = hybrid.reciprocal_rank_fusion(a, b, k=k, constant=c)
    for i in range(len(a)):
        want = taught.rrf([a[i].tolist(), b[i].tolist()], c=c)[:k]
        assert indices[i].tolist() == want
        fused = {doc: 0.0 for doc in want}
        for ranking in (a[i].tolist(), b[i].tolist()):
            for rank, doc in enumerate(ranking, start=1):
                if doc in fused:
                    fused[doc] += 1 / (c + rank)
        np.testing.assert_allclose(scores[i], [fused[doc] for doc in want], rtol=1e-12)


@st.composite
def two_score_matrices(draw):
    q, n = draw(st.integers(1, 4)), draw(st.integers(1, 40))
    values = st.floats(-5, 5, allow_nan=False, width=32)
    dense = np.array(draw(st.lists(values, min_size=q * n, max_size=q * n)), dtype=np.float32).reshape(q, n)
    # BM25-like: non-negative, often all zero for a query (no word matched).
    sparse = np.array(draw(st.lists(st.sampled_from([0.0, 0.0, 0.5, 1.25, 3.0]), min_size=q * n, max_size=q * n)),
                      dtype=np.float32).reshape(q, n)
    return dense, sparse, draw(st.sampled_from([0.0, 0.3, 0.5, 0.7, 1.0])), draw(st.integers(1, n))


@settings(max_examples=200, deadline=None)
@given(two_score_matrices())
def test_weighted_fusion_fast_path_gives_the_taught_ranking(case):
    dense, sparse, weight, k = case
    indices, values = hybrid.weighted_fusion(dense, sparse, k, weight=weight)
    for i in range(len(dense)):
        fused = taught.weighted_fusion(dense[i], sparse[i], weight)   # (n,) float64
        assert indices[i].tolist() == np.argsort(-fused, kind="stable")[:k].tolist()
        np.testing.assert_allclose(values[i], fused[indices[i]], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(hybrid.min_max_normalize(dense[i]), taught.min_max(dense[i]), rtol=1e-12)


scores = st.lists(st.floats(0, 1, allow_nan=False).map(lambda x: round(x, 2)), min_size=1, max_size=20)


@settings(max_examples=200, deadline=None)
@given(scores, scores, st.sampled_from([None, 0.0, 0.1, 0.25, 0.5]))
def test_choose_threshold_is_the_taught_rule(answerable, unanswerable, cap):
    a, u = np.array(answerable), np.array(unanswerable)
    got = abstention.choose_threshold(a, u, max_wrongly_refused=cap)
    if cap is None:
        assert got == taught.choose_threshold(a, u)
    else:   # the capped rule, as a plain loop over the taught candidates and error rates
        best = None
        for t in taught.candidate_thresholds(a, u):
            refused, answered = (float(x[0]) for x in taught.tradeoff(a, u, [t]))
            if refused <= cap and (best is None or answered < best[1]):
                best = (float(t), answered)
        assert got == best[0]
