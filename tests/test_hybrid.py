"""Reciprocal rank fusion and weighted score fusion: by hand, by properties, and against ranx's fusion."""
from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import rag_helpers as rh
from rag_helpers.engine.bm25 import ENGLISH_STOPWORDS, BM25Index
from rag_helpers.engine.hybrid import RRF_CONSTANT, min_max_normalize, reciprocal_rank_fusion, weighted_fusion


# ------------------------------------------------------------------ RRF by hand
def test_rrf_by_hand():
    dense, sparse = np.array([0, 1, 2]), np.array([2, 0, 3])
    ids, scores = reciprocal_rank_fusion(dense, sparse, k=4)
    expected = {0: 1 / 61 + 1 / 62, 1: 1 / 62, 2: 1 / 63 + 1 / 61, 3: 1 / 63}
    assert ids.tolist() == [0, 2, 1, 3]
    np.testing.assert_allclose(scores, [expected[d] for d in ids], rtol=1e-15)
    assert ids.dtype == np.int64 and scores.dtype == np.float64 and RRF_CONSTANT == 60


def test_rrf_agreement_beats_a_single_first_place():
    # 5th in both (2/65) beats 1st in one and absent from the other (1/61): the point of c = 60.
    a = np.array([10, 11, 12, 13, 7])
    b = np.array([20, 21, 22, 23, 7])
    assert reciprocal_rank_fusion(a, b, k=1)[0].tolist() == [7]
    # With c = 1 the first places win instead: 1/2 > 2/6.
    assert reciprocal_rank_fusion(a, b, k=1, constant=1)[0].tolist() == [10]


def test_rrf_ties_go_to_the_lower_index():
    ids, scores = reciprocal_rank_fusion(np.array([9, 4]), np.array([4, 9]), k=2)
    assert ids.tolist() == [4, 9] and scores[0] == scores[1]
    ids, _ = reciprocal_rank_fusion(np.array([8]), np.array([3]), k=2)  # 1/61 each
    assert ids.tolist() == [3, 8]


def test_rrf_batch_and_rankings_of_different_lengths():
    a = np.array([[0, 1, 2, 3], [3, 2, 1, 0]])
    b = np.array([[5, 0], [6, 3]])
    ids, scores = reciprocal_rank_fusion(a, b, k=3)
    assert ids.shape == scores.shape == (2, 3)
    assert ids.tolist() == [[0, 5, 1], [3, 6, 2]]  # 5 (1/61) before 1 (1/62)
    for i in range(2):
        one = reciprocal_rank_fusion(a[i], b[i], k=3)
        np.testing.assert_array_equal(one[0], ids[i])
        np.testing.assert_array_equal(one[1], scores[i])


def reference_rrf(rankings: list[list[int]], k: int, c: float) -> list[int]:
    """RRF spelled out with a dict, ties by the lower id."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, doc in enumerate(ranking, start=1):
            fused[doc] = fused.get(doc, 0.0) + 1.0 / (c + rank)
    return sorted(fused, key=lambda d: (-fused[d], d))[:k]


@st.composite
def rankings(draw, n_rankings: int = 2):
    n_docs = draw(st.integers(1, 40))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    lengths = [draw(st.integers(1, n_docs)) for _ in range(n_rankings)]
    return [rng.permutation(n_docs)[:length] for length in lengths]


@given(rankings(), st.sampled_from([60, 1, 0.5, 1000]), st.integers(1, 40))
def test_rrf_matches_the_spelled_out_reference(ranks, c, k):
    k = min(k, max(len(r) for r in ranks))
    ids, scores = reciprocal_rank_fusion(*ranks, k=k, constant=c)
    assert ids.tolist() == reference_rrf([r.tolist() for r in ranks], k, c)
    assert (np.diff(scores) <= 0).all()


@given(rankings())
def test_rrf_of_two_is_symmetric(ranks):
    a, b = ranks
    k = max(len(a), len(b))
    ab, ba = reciprocal_rank_fusion(a, b, k=k), reciprocal_rank_fusion(b, a, k=k)
    np.testing.assert_array_equal(ab[0], ba[0])
    np.testing.assert_array_equal(ab[1], ba[1])


@given(rankings(n_rankings=3))
def test_rrf_takes_more_than_two_rankings(ranks):
    k = max(len(r) for r in ranks)
    ids, _ = reciprocal_rank_fusion(*ranks, k=k)
    assert set(ids.tolist()) <= set(np.concatenate(ranks).tolist())
    assert len(set(ids.tolist())) == k


# ----------------------------------------------------------- weighted fusion
def test_min_max_normalize_by_hand():
    np.testing.assert_allclose(min_max_normalize(np.array([2.0, 4.0, 3.0])), [0, 1, 0.5])
    np.testing.assert_allclose(min_max_normalize(np.array([[1, 3], [5, 5]])), [[0, 1], [0, 0]])  # constant row -> 0


def test_weighted_fusion_by_hand():
    dense = np.array([0.9, 0.5, 0.1, 0.7])   # normalized: 1, 0.5, 0, 0.75
    sparse = np.array([0.0, 6.0, 3.0, 0.0])  # normalized: 0, 1, 0.5, 0
    ids, scores = weighted_fusion(dense, sparse, 4, weight=0.5)
    assert ids.tolist() == [1, 0, 3, 2]
    np.testing.assert_allclose(scores, [0.75, 0.5, 0.375, 0.25])
    assert weighted_fusion(dense, sparse, 1, weight=1.0)[0].tolist() == [0]  # dense alone
    assert weighted_fusion(dense, sparse, 1, weight=0.0)[0].tolist() == [1]  # sparse alone


def test_weighted_fusion_ties_go_to_the_lower_index():
    ids, scores = weighted_fusion(np.array([1.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0]), 3)
    assert ids.tolist() == [0, 1, 2] and scores.tolist() == [0.5, 0.5, 0.5]


finite = st.floats(-1e3, 1e3, allow_nan=False, width=32)


@given(st.integers(1, 5), st.integers(1, 30), st.floats(0, 1), st.data())
def test_weighted_fusion_is_the_stable_argsort_of_the_mix(q, n, weight, data):
    a = np.array(data.draw(st.lists(finite, min_size=q * n, max_size=q * n)), dtype=np.float32).reshape(q, n)
    b = np.array(data.draw(st.lists(finite, min_size=q * n, max_size=q * n)), dtype=np.float32).reshape(q, n)
    k = data.draw(st.integers(1, n))
    ids, scores = weighted_fusion(a, b, k, weight=weight)
    mix = weight * min_max_normalize(a) + (1 - weight) * min_max_normalize(b)
    assert ((mix >= 0) & (mix <= 1 + 1e-12)).all()
    np.testing.assert_array_equal(ids, np.argsort(-mix, axis=1, kind="stable")[:, :k])
    np.testing.assert_array_equal(scores, np.take_along_axis(mix, ids, axis=1))
    # Normalizing makes the fusion blind to a positive scale and a shift of either input.
    # Only where the shifted scores still tell a's values apart: CI drew a row of two
    # nearly equal values that 3 * a + 7 rounded to one in float32.
    moved = 4 * a.astype(np.float64) + 8
    assume(np.array_equal((moved - 8) / 4, a))
    np.testing.assert_allclose(weighted_fusion(moved, b, k, weight=weight)[1], scores, atol=1e-6)


# ---------------------------------------------------------- against ranx's fusion
# (Weighted sum only: ranx's RRF compiles parallel numba code in every new
# process, 30-45 s here, so RRF is checked against the spelled-out
# definition above instead.)
def _ranx_fused(runs: list[dict[str, dict[str, float]]], **options) -> dict[str, dict[str, float]]:
    from ranx import Run, fuse

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba's type-safety notes from inside ranx
        return fuse([Run(r) for r in runs], **options).to_dict()


@settings(max_examples=30)
@given(st.integers(1, 4), st.integers(2, 30), st.sampled_from([0.0, 0.3, 0.5, 0.8, 1.0]), st.integers(0, 2**32 - 1))
def test_weighted_fusion_scores_agree_with_ranx_wsum(q, n, weight, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((q, n)), rng.exponential(size=(q, n))
    runs = [{f"q{i}": {f"d{d}": float(s[i, d]) for d in range(n)} for i in range(q)} for s in (a, b)]
    reference = _ranx_fused(runs, norm="min-max", method="wsum", params={"weights": [weight, 1 - weight]})
    ids, scores = weighted_fusion(a, b, n, weight=weight)
    for i in range(q):
        np.testing.assert_allclose(scores[i], [reference[f"q{i}"].get(f"d{d}", 0.0) for d in ids[i]],
                                   rtol=0, atol=1e-9)


# ------------------------------------------------ dense + BM25 on real documents
def test_hybrid_of_real_dense_and_bm25_rankings(encoder, sample_embeddings):
    questions = [rh.SAMPLE_QUESTION, "Who created the Python language?"]
    dense_scores = rh.cosine_scores(rh.embed(questions, encoder), sample_embeddings)
    index = BM25Index(stopwords=ENGLISH_STOPWORDS).fit(rh.SAMPLE_DOCUMENTS)
    bm25_ids, _ = index.search(questions, 5)
    dense_ids, _ = rh.search(rh.embed(questions, encoder), sample_embeddings, 5)
    by_rank, _ = reciprocal_rank_fusion(dense_ids, bm25_ids, k=3)
    by_score, _ = weighted_fusion(dense_scores, index.scores(questions), 3, weight=0.5)
    for fused in (by_rank, by_score):
        assert rh.SAMPLE_DOCUMENTS[fused[0, 0]].startswith("Jupiter")
        assert rh.SAMPLE_DOCUMENTS[fused[1, 0]].startswith("Python")


# ------------------------------------------------------------------ bad input
A = np.array([[0, 1, 2]])


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: reciprocal_rank_fusion(A, k=1), TypeError, "needs at least two rankings, got 1"),
        (lambda: reciprocal_rank_fusion(A, A, k=4), ValueError,
         "k=4 but the rankings of query 0 hold only 3 different"),
        (lambda: reciprocal_rank_fusion(A, A, k=7), ValueError, "k=7 is larger than the number of ids in all"),
        (lambda: reciprocal_rank_fusion(A, A, k=0), ValueError, "k must be at least 1"),
        (lambda: reciprocal_rank_fusion(A, A, k=1, constant=0), ValueError, "constant must be a finite number > 0"),
        (lambda: reciprocal_rank_fusion(A, A[0], k=1), ValueError, "ranking 1 has shape (3,)"),
        (lambda: reciprocal_rank_fusion(A, np.vstack([A, A]), k=1), ValueError, "ranking 1 has 2 queries"),
        (lambda: reciprocal_rank_fusion(A, A * 0.5, k=1), TypeError, "ranking 1 has dtype float64"),
        (lambda: reciprocal_rank_fusion(A, np.array([[0, -1]]), k=1), ValueError, "negative index (-1) for query 0"),
        (lambda: reciprocal_rank_fusion(A, np.array([[4, 2, 4]]), k=1), ValueError,
         "ranking 1 lists document 4 twice for query 0"),
        (lambda: reciprocal_rank_fusion(A, np.zeros((1, 0), dtype=int), k=1), ValueError, "ranking 1 is empty"),
        (lambda: weighted_fusion(np.ones(3), np.ones(4), 1), ValueError,
         "scores_a has shape (3,) but scores_b has (4,)"),
        (lambda: weighted_fusion(np.ones(3), np.ones(3), 4), ValueError, "k=4 is larger than the number"),
        (lambda: weighted_fusion(np.ones(3), np.ones(3), 1, weight=1.5), ValueError,
         "weight must be a number in [0, 1]"),
        (lambda: weighted_fusion(np.array([1, np.nan]), np.ones(2), 1), ValueError, "scores has NaN or infinite"),
        (lambda: min_max_normalize(np.array([1.0, np.inf])), ValueError, "scores has NaN or infinite"),
        (lambda: min_max_normalize(np.array(["a"])), TypeError, "real-valued numeric array"),
    ],
)
def test_bad_input_is_refused(call, error, message):
    with pytest.raises(error, match=re.escape(message)):
        call()
