"""``rh.search`` for one query over a small corpus: the fast path gives the taught answer and keeps the checks.

Issue 19 item 5: at N = 1e3 the matrix-vector product takes ~20 us, and the
general argument checks cost about as much again. ``search`` now sends plain
valid input (one float query of unit length, a float matrix that fits one
block, an int k) straight to ``blocked_search.search_one_block``, whose
selection (``topk.top_k_one_row``) takes a threshold from a partition of a
sample of the scores. These tests check that this path gives the taught
``rag_helpers.topk.search`` / ``top_k`` answers exactly (indices and scores,
ties included), and that every mistake still gets the general path's error.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rag_helpers as rh
from rag_helpers import topk as taught
from rag_helpers.engine import blocked_search, retrieval
from rag_helpers.engine.topk import top_k_one_row
from strategies import exact_corpus, one_query_corpus, tied_score_rows


def _takes_fast_path(query, docs, k, block_bytes=retrieval.SCORE_BLOCK_BYTES) -> bool:
    return retrieval._is_plain_small_search(query, docs, k, block_bytes)


@st.composite
def small_corpus(draw):
    """(query (d,), docs (n, d)) float32 unit rows, n up to 3000; often many exact ties (duplicated rows)."""
    n = draw(st.integers(1, 3000))
    d = draw(st.integers(1, 24))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    docs = rh.l2_normalize(rng.standard_normal((n, d)).astype(np.float32))
    distinct = draw(st.sampled_from([0, 1, 3, 40]))
    if distinct:  # rows drawn from a few: exactly tied scores, at the cut too
        docs = docs[rng.integers(0, min(distinct, n), size=n)]
    if draw(st.booleans()):  # rising scores: the best at the end, the sample's worst case
        query = docs[rng.integers(0, n)]
        docs = docs[np.argsort(docs @ query, kind="stable")]
    else:
        query = rh.l2_normalize(rng.standard_normal(d).astype(np.float32))
    return query, docs


@given(small_corpus(), st.data())
@settings(max_examples=300, deadline=None)
def test_the_small_path_is_the_taught_search(corpus, data):
    query, docs = corpus
    n = docs.shape[0]
    k = data.draw(st.one_of(st.integers(1, min(n, 12)), st.integers(1, n)))
    assert _takes_fast_path(query, docs, k)
    indices, scores = rh.search(query, docs, k)
    expected_indices, expected_scores = taught.search(query, docs, k)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_array_equal(scores, expected_scores)
    assert indices.dtype == np.int64 and scores.dtype == np.float32 and indices.shape == scores.shape == (k,)
    # And the general path (a batch of one) agrees with it.
    batch_indices, batch_scores = rh.search(query[None, :], docs, k)
    np.testing.assert_array_equal(batch_indices[0], indices)
    np.testing.assert_array_equal(batch_scores[0], scores)


@given(exact_corpus(max_n=400, max_d=12, max_queries=1), st.data())
@settings(max_examples=150, deadline=None)
def test_the_small_path_on_exact_scores_settles_ties_by_index(corpus, data):
    # Every score a multiple of 1/4: ties everywhere, in any summation order.
    queries, docs = corpus
    query = queries[0]
    k = data.draw(st.integers(1, docs.shape[0]))
    indices, scores = rh.search(query, docs, k)
    exact = docs.astype(np.float64) @ query.astype(np.float64)
    np.testing.assert_array_equal(indices, np.argsort(-exact, kind="stable")[:k])
    np.testing.assert_array_equal(scores, exact[indices])


@given(tied_score_rows(max_rows=1, max_n=5000), st.data())
@settings(max_examples=300, deadline=None)
def test_the_one_row_selection_is_the_taught_top_k(rows, data):
    # Any scores without NaN: few levels, sorted, +-0.0, infinities.
    scores = rows[0]
    k = data.draw(st.one_of(st.integers(1, min(scores.shape[0], 8)), st.integers(1, scores.shape[0])))
    indices, values = top_k_one_row(scores, k)
    expected = taught.top_k(scores, k)
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_array_equal(values, scores[expected])
    assert indices.dtype == np.int64


def test_float64_and_mixed_dtypes_agree_with_the_taught_search():
    rng = np.random.default_rng(3)
    docs = rh.l2_normalize(rng.standard_normal((1000, 16)))
    query = rh.l2_normalize(rng.standard_normal(16))
    assert _takes_fast_path(query, docs, 5)  # float64 throughout
    assert not _takes_fast_path(query.astype(np.float32), docs, 5)  # mixed: the general path casts the query
    for q, d in ((query, docs), (query.astype(np.float32), docs), (query, docs.astype(np.float32))):
        indices, scores = rh.search(q, d, 5)
        expected_indices, expected_scores = taught.search(q.astype(d.dtype), d, 5)
        np.testing.assert_array_equal(indices, expected_indices)
        np.testing.assert_array_equal(scores, expected_scores.astype(np.float32))


def test_what_does_not_take_the_small_path():
    rng = np.random.default_rng(4)
    docs = rh.l2_normalize(rng.standard_normal((1000, 8)).astype(np.float32))
    query = docs[3]
    assert _takes_fast_path(query, docs, 5)
    assert not _takes_fast_path(query[None, :], docs, 5)        # a batch
    assert not _takes_fast_path(query, docs, np.int64(5))       # a NumPy integer k: the general checks
    assert not _takes_fast_path(query, docs, True)              # a bool is not a k
    assert not _takes_fast_path(query.tolist(), docs, 5)        # a list
    assert not _takes_fast_path(query, docs.astype(np.float16), 5)
    assert not _takes_fast_path(query, docs, 5, 4 * 100)        # blocks of 100 documents
    assert not _takes_fast_path(query * 2, docs, 5)             # not unit length
    big = np.zeros((retrieval._ONE_BLOCK_ROWS + 1, 8), dtype=np.float32)
    assert not _takes_fast_path(query, big, 5)
    # What it does not take still gives the same answer.
    expected = rh.search(query, docs, 5)
    for other in (rh.search(query, docs, np.int64(5)), rh.search(query.tolist(), docs, 5),
                  rh.search(query, docs, 5, block_bytes=4 * 100)):
        np.testing.assert_array_equal(other[0], expected[0])
        np.testing.assert_array_equal(other[1], expected[1])


# ------------------------------------------------------------------ the checks are kept
def _small() -> tuple[np.ndarray, np.ndarray]:
    docs = rh.l2_normalize(np.random.default_rng(7).standard_normal((1000, 8)).astype(np.float32))
    return docs[0].copy(), docs


def _bad_docs(kind: str) -> np.ndarray:
    _, docs = _small()
    docs = docs.copy()
    if kind == "nan":
        docs[412, 3] = np.nan
    elif kind == "inf":
        docs[412, 3] = np.inf
    elif kind == "too_long_against":  # norm 3, pointing away from the query: a cosine below -1
        docs[412] = -3 * docs[0]
    elif kind == "too_long_along":  # norm 3, along the query: a cosine above 1, the best score
        docs[412] = 3 * docs[0]
    return docs


@pytest.mark.parametrize("kind, message", [
    ("nan", r"docs has NaN or infinite values in row\(s\) 412"),
    ("inf", r"docs has NaN or infinite values in row\(s\) 412"),
    ("too_long_against", r"docs is not L2-normalized: row\(s\) 412"),
    ("too_long_along", r"docs is not L2-normalized: row\(s\) 412"),
])
@pytest.mark.parametrize("k", [1, 5, 100, 1000])
def test_bad_documents_at_small_n_raise_the_general_error(kind, message, k):
    query, _ = _small()
    docs = _bad_docs(kind)
    with pytest.raises(ValueError, match=message):
        rh.search(query, docs, k)
    # The same error as the general path's (a batch of one query).
    with pytest.raises(ValueError, match=message):
        rh.search(query[None, :], docs, k)


def _error(fn) -> tuple[type, str]:
    with pytest.raises((TypeError, ValueError)) as info:
        fn()
    return info.type, str(info.value)


def _general_error(query, docs, k, block_bytes):
    """The error of the general path: the checks ``search`` ran before the small path existed."""
    from rag_helpers._infra.validation import check_k, check_positive_int
    from rag_helpers.engine.scoring import prepare_query_and_docs

    def run():
        q, d = prepare_query_and_docs(query, docs)
        check_k(k, d.shape[0])
        check_positive_int(block_bytes, "block_bytes")
        blocked_search.search_blocked(q[None, :] if q.ndim == 1 else q, d, k, block_bytes)
    return _error(run)


query0, docs0 = _small()
BAD_CALLS = {
    "k=0": (query0, docs0, 0, retrieval.SCORE_BLOCK_BYTES),
    "k>n": (query0, docs0, 1001, retrieval.SCORE_BLOCK_BYTES),
    "k float": (query0, docs0, 2.0, retrieval.SCORE_BLOCK_BYTES),
    "k bool": (query0, docs0, True, retrieval.SCORE_BLOCK_BYTES),
    "k None": (query0, docs0, None, retrieval.SCORE_BLOCK_BYTES),
    "query not unit": (query0 * 1.5, docs0, 5, retrieval.SCORE_BLOCK_BYTES),
    "query zero": (np.zeros(8, np.float32), docs0, 5, retrieval.SCORE_BLOCK_BYTES),
    "query nan": (np.full(8, np.nan, np.float32), docs0, 5, retrieval.SCORE_BLOCK_BYTES),
    "query inf": (np.r_[np.inf, np.zeros(7)].astype(np.float32), docs0, 5, retrieval.SCORE_BLOCK_BYTES),
    "dimension": (query0[:7], docs0, 5, retrieval.SCORE_BLOCK_BYTES),
    "docs 1-D": (query0, docs0[0], 1, retrieval.SCORE_BLOCK_BYTES),
    "docs 3-D": (query0, docs0[None], 5, retrieval.SCORE_BLOCK_BYTES),
    "query 3-D": (query0[None, None], docs0, 5, retrieval.SCORE_BLOCK_BYTES),
    "docs complex": (query0, docs0.astype(np.complex64), 5, retrieval.SCORE_BLOCK_BYTES),
    "docs strings": (query0, docs0.astype(str), 5, retrieval.SCORE_BLOCK_BYTES),
    "docs masked": (query0, np.ma.masked_array(docs0), 5, retrieval.SCORE_BLOCK_BYTES),
    "docs empty": (np.zeros(0, np.float32), np.zeros((3, 0), np.float32), 1, retrieval.SCORE_BLOCK_BYTES),
    "docs no rows": (query0, np.zeros((0, 8), np.float32), 1, retrieval.SCORE_BLOCK_BYTES),
    "block_bytes 0": (query0, docs0, 5, 0),
    "block_bytes float": (query0, docs0, 5, 1024.0),
}


@pytest.mark.parametrize("name", BAD_CALLS)
def test_bad_arguments_at_small_n_raise_the_general_error(name):
    query, docs, k, block_bytes = BAD_CALLS[name]
    assert not _takes_fast_path(query, docs, k, block_bytes)
    assert _error(lambda: rh.search(query, docs, k, block_bytes=block_bytes)) == _general_error(
        query, docs, k, block_bytes)


@given(one_query_corpus(max_n=50, max_d=8), st.floats(allow_nan=True, allow_infinity=True))
@settings(max_examples=100, deadline=None)
def test_a_query_off_unit_length_is_refused_like_before(corpus, scale):
    query, docs = corpus
    with np.errstate(over="ignore"):  # a huge scale overflows to inf in float32: refused too
        scaled = (query * np.float32(scale)).astype(np.float32) if np.isfinite(scale) else np.full_like(query, scale)
    norm = float(np.linalg.norm(scaled.astype(np.float64)))
    if np.isfinite(norm) and abs(norm - 1) <= 1e-3:
        return  # still unit length: nothing to refuse
    with np.errstate(over="ignore", invalid="ignore"):  # the norm of a huge query overflows: refused all the same
        assert _error(lambda: rh.search(scaled, docs, 1)) == _general_error(
            scaled, docs, 1, retrieval.SCORE_BLOCK_BYTES)
