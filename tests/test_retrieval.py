"""retrieval.py: search (exact, blocked, batched) and retrieve over real embeddings."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import rag_helpers as rh
from conftest import JUPITER, VENUS
from rag_helpers.engine.blocked_search import SCORE_BLOCK_BYTES
from strategies import exact_corpus, one_query_corpus


def reference_top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """The contract, spelled out."""
    return np.argsort(-scores, kind="stable")[:k]

unit = rh.l2_normalize(np.ones((3, 4), dtype=np.float32))

def test_the_planet_question_finds_jupiter_then_venus(encoder, sample_embeddings):
    hits = rh.retrieve_with_numpy(rh.SAMPLE_QUESTION, rh.SAMPLE_DOCUMENTS, sample_embeddings, encoder, k=2)
    assert [doc for _, doc in hits] == [JUPITER, VENUS]
    assert hits[0][0] == pytest.approx(0.7672, abs=5e-5)
    assert hits[1][0] == pytest.approx(0.5384, abs=5e-5)
    assert all(isinstance(score, float) for score, _ in hits)

def test_retrieval_returns_everything_in_order_for_k_equal_n(encoder, sample_embeddings):
    n = len(rh.SAMPLE_DOCUMENTS)
    hits = rh.retrieve_with_numpy(rh.SAMPLE_QUESTION, rh.SAMPLE_DOCUMENTS, sample_embeddings, encoder, k=n)
    scores = [score for score, _ in hits]
    assert sorted(scores, reverse=True) == scores and len(hits) == n
    assert {doc for _, doc in hits} == set(rh.SAMPLE_DOCUMENTS)

@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"query": ""}, ValueError, "query is empty"),
        ({"query": " \n\t"}, ValueError, "query is empty"),
        ({"query": None}, TypeError, "query must be a string"),
        ({"k": 0}, ValueError, "at least 1"),
        ({"k": -3}, ValueError, "at least 1"),
        ({"k": 11}, ValueError, r"k=11 is larger than the number of documents \(10\)"),
        ({"k": 2.5}, TypeError, "k must be an integer"),
        ({"documents": []}, ValueError, "documents is empty"),
        ({"documents": rh.SAMPLE_DOCUMENTS[:3]}, ValueError, "one row per document"),
        ({"documents": [1] * 10}, TypeError, r"documents\[0\] is a int"),
    ],
)
def test_retrieve_refuses_bad_input_before_any_work(encoder, sample_embeddings, kwargs, error, message):
    args = {"query": rh.SAMPLE_QUESTION, "documents": rh.SAMPLE_DOCUMENTS, "k": 2}
    args.update(kwargs)
    with pytest.raises(error, match=message):
        rh.retrieve_with_numpy(args["query"], args["documents"], sample_embeddings, encoder, k=args["k"])

def test_retrieve_refuses_embeddings_of_another_dimension(encoder, sample_embeddings):
    with pytest.raises(ValueError, match="dimension mismatch"):
        rh.retrieve_with_numpy(rh.SAMPLE_QUESTION, rh.SAMPLE_DOCUMENTS, sample_embeddings[:, :100], encoder)

@given(exact_corpus(max_d=12, max_queries=5), st.data(), st.sampled_from([16, 64, 256, SCORE_BLOCK_BYTES]))
def test_search_is_exactly_stable_argsort_of_the_cosines(data, draw, block_bytes):
    # Small block_bytes splits the documents into many blocks, so the merge of
    # per-block winners (ties across blocks included) is exercised too.
    queries, docs = data
    k = draw.draw(st.integers(1, docs.shape[0]))
    exact = queries.astype(np.float64) @ docs.T.astype(np.float64)
    indices, scores = rh.search(queries, docs, k, block_bytes=block_bytes)
    assert indices.shape == (len(queries), k) and scores.dtype == np.float32
    for i in range(len(queries)):
        np.testing.assert_array_equal(indices[i], reference_top_k(exact[i], k))
        np.testing.assert_array_equal(scores[i], exact[i][indices[i]])
    one_index, one_score = rh.search(queries[0], docs, k, block_bytes=block_bytes)
    assert one_index.shape == (k,)
    np.testing.assert_array_equal(one_index, indices[0])
    np.testing.assert_array_equal(one_score, scores[0])

@given(one_query_corpus(), st.integers(1, 4), st.data(), st.sampled_from([64, 1024, SCORE_BLOCK_BYTES]))
def test_search_random_vectors_within_float_tolerance(data, q, draw, block_bytes):
    query, docs = data
    rng = np.random.default_rng(q)
    queries = np.vstack([query, docs[rng.integers(0, docs.shape[0], size=q - 1)]])
    k = draw.draw(st.integers(1, docs.shape[0]))
    indices, scores = rh.search(queries, docs, k, block_bytes=block_bytes)
    full = queries.astype(np.float64) @ docs.T.astype(np.float64)
    for i in range(q):
        row_idx, row_scores = indices[i], scores[i].astype(np.float64)
        assert len(set(row_idx.tolist())) == k
        np.testing.assert_allclose(row_scores, full[i][row_idx], atol=1e-6)
        # Best first, and equal scores in index order.
        assert all(
            (a > b) or (a == b and ia < ib)
            for a, b, ia, ib in zip(row_scores, row_scores[1:], row_idx, row_idx[1:])
        )
        # Nothing left out scores better than what was kept.
        left_out = np.setdiff1d(np.arange(docs.shape[0]), row_idx)
        if left_out.size:
            assert full[i][left_out].max() <= row_scores[-1] + 1e-6

def test_search_a_batch_over_many_documents_in_blocks():
    rng = np.random.default_rng(5)
    docs = rh.l2_normalize(rng.standard_normal((20_000, 32)).astype(np.float32))
    queries = rh.l2_normalize(rng.standard_normal((7, 32)).astype(np.float32))
    indices, _ = rh.search(queries, docs, 10, block_bytes=7 * 4 * 3000)  # 7 blocks
    full = queries @ docs.T
    for i in range(7):
        np.testing.assert_array_equal(indices[i], reference_top_k(full[i], 10))

@pytest.mark.parametrize("k", [0, 4, 1.5, -2])
def test_search_refuses_bad_k(k):
    with pytest.raises((ValueError, TypeError), match="k"):
        rh.search(unit[0], unit, k)

def test_search_error_names_the_bad_row_in_a_later_block():
    docs = rh.l2_normalize(np.random.default_rng(6).standard_normal((100, 4)).astype(np.float32))
    docs[77, 2] = np.nan
    with pytest.raises(ValueError, match=r"row\(s\) 77"):
        rh.search(docs[0], docs, 3, block_bytes=4 * 10)
