"""cosine_scores, cosine_scores_loop, top_k and search against plain references."""
from __future__ import annotations

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import rag_helpers as rh


def reference_top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """The contract, spelled out."""
    return np.argsort(-scores, kind="stable")[:k]


@st.composite
def corpus(draw, max_n: int = 60, max_d: int = 16):
    """(query (d,), docs (n, d)) unit float32 vectors."""
    n = draw(st.integers(1, max_n))
    d = draw(st.integers(1, max_d))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    docs = rh.l2_normalize(rng.standard_normal((n, d)).astype(np.float32))
    if draw(st.booleans()):
        # Duplicate rows make exactly tied scores.
        docs = docs[rng.integers(0, max(1, n // 3), size=n)]
    query = rh.l2_normalize(rng.standard_normal(d).astype(np.float32))
    return query, docs


# ---------------------------------------------------------------- cosine_scores
@given(corpus())
def test_cosine_scores_match_float64_reference(data):
    query, docs = data
    scores = rh.cosine_scores(query, docs)
    assert scores.shape == (docs.shape[0],) and scores.dtype == np.float32
    reference = docs.astype(np.float64) @ query.astype(np.float64)
    np.testing.assert_allclose(scores, reference, atol=1e-6)


@given(corpus(max_n=25))
def test_loop_baseline_gives_the_same_numbers(data):
    query, docs = data
    np.testing.assert_allclose(rh.cosine_scores_loop(query, docs), rh.cosine_scores(query, docs), atol=1e-6)


def test_cosine_scores_are_cosines_of_the_raw_vectors():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(384), rng.standard_normal((20, 384))
    cosines = b @ a / (np.linalg.norm(b, axis=1) * np.linalg.norm(a))
    np.testing.assert_allclose(rh.cosine_scores(rh.l2_normalize(a), rh.l2_normalize(b)), cosines, atol=1e-6)


def test_batch_of_queries_gives_one_row_per_query():
    rng = np.random.default_rng(2)
    docs = rh.l2_normalize(rng.standard_normal((30, 8)).astype(np.float32))
    queries = rh.l2_normalize(rng.standard_normal((4, 8)).astype(np.float32))
    batch = rh.cosine_scores(queries, docs)
    assert batch.shape == (4, 30)
    for i in range(4):
        np.testing.assert_allclose(batch[i], rh.cosine_scores(queries[i], docs), atol=1e-6)


def test_float64_query_does_not_copy_float32_docs_into_float64():
    docs = rh.l2_normalize(np.random.default_rng(3).standard_normal((10, 4)).astype(np.float32))
    assert rh.cosine_scores(docs[0].astype(np.float64), docs).dtype == np.float32


unit = rh.l2_normalize(np.ones((3, 4), dtype=np.float32))


@pytest.mark.parametrize(
    "query, docs, error, message",
    [
        (unit[0][:3], unit, ValueError, "dimension mismatch"),
        (unit[0], unit[0], ValueError, "docs must be 2-D"),
        (unit[None, None, 0], unit, ValueError, "query must be 1-D or 2-D"),
        (np.array([np.nan, 0, 0, 0], dtype=np.float32), unit, ValueError, "query has NaN"),
        (np.zeros(4, dtype=np.float32), unit, ValueError, "not L2-normalized"),
        (np.ones(4, dtype=np.float32), unit, ValueError, "not L2-normalized"),
        (unit[0], np.vstack([unit, [[np.nan, 0, 0, 0]]]), ValueError, r"docs has NaN or infinite values in row\(s\) 3"),
        (unit[0], np.vstack([unit, [[np.inf, 1, 0, 0]]]), ValueError, r"row\(s\) 3"),
        (unit[0], unit * 3, ValueError, "docs is not L2-normalized"),
        (unit[0], np.zeros((0, 4), dtype=np.float32), ValueError, "docs is empty"),
        (["a", "b", "c", "d"], unit, TypeError, "query must be a real-valued"),
    ],
)
def test_cosine_scores_refuse_bad_input(query, docs, error, message):
    with pytest.raises(error, match=message):
        rh.cosine_scores(query, docs)
    with pytest.raises(error, match=message):
        rh.search(query, docs, 1)


def test_loop_takes_one_query_only():
    with pytest.raises(ValueError, match="one \\(d,\\) query"):
        rh.cosine_scores_loop(unit, unit)


# ---------------------------------------------------------------------- top_k
tie_heavy_scores = hnp.arrays(
    np.float32,
    st.integers(1, 300),
    elements=st.sampled_from([-1.0, -0.5, -0.0, 0.0, 0.25, 0.5, 1.0, np.inf, -np.inf]),
)
any_scores = hnp.arrays(
    np.float64, st.integers(1, 300), elements=st.floats(allow_nan=False, allow_infinity=True)
)


@given(st.one_of(tie_heavy_scores, any_scores), st.data())
@pytest.mark.parametrize("method", ["auto", "argsort", "argpartition"])
def test_top_k_is_exactly_stable_argsort(method, scores, data):
    k = data.draw(st.integers(1, scores.shape[0]))
    result = rh.top_k(scores, k, method=method)
    np.testing.assert_array_equal(result, reference_top_k(scores, k))
    assert result.dtype.kind == "i"


def test_top_k_large_inputs_take_the_partition_path_and_agree():
    rng = np.random.default_rng(4)
    # Rounded scores: many ties right at the k-th place.
    scores = np.round(rng.standard_normal(200_000), 2).astype(np.float32)
    for k in (1, 5, 100, 1000):
        np.testing.assert_array_equal(rh.top_k(scores, k), reference_top_k(scores, k))


def test_ties_come_out_in_index_order():
    scores = np.array([0.5, 0.9, 0.5, 0.9, 0.1])
    np.testing.assert_array_equal(rh.top_k(scores, 4), [1, 3, 0, 2])


@pytest.mark.parametrize(
    "k, error, message",
    [
        (0, ValueError, "at least 1"),
        (-1, ValueError, "at least 1"),
        (6, ValueError, "larger than the number of scores"),
        (2.0, TypeError, "must be an integer"),
        ("2", TypeError, "must be an integer"),
        (True, TypeError, "must be an integer"),
        (None, TypeError, "must be an integer"),
    ],
)
def test_top_k_refuses_bad_k(k, error, message):
    with pytest.raises(error, match=message):
        rh.top_k(np.arange(5.0), k)


def test_top_k_accepts_numpy_integers():
    np.testing.assert_array_equal(rh.top_k(np.arange(5.0), np.int64(2)), [4, 3])


@pytest.mark.parametrize("method", ["argsort", "argpartition"])
def test_top_k_refuses_nan(method):
    scores = np.zeros(5000)
    scores[1234] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        rh.top_k(scores, 3, method=method)


@pytest.mark.parametrize("bad", [np.zeros((2, 3)), np.zeros(0)])
def test_top_k_refuses_bad_shapes(bad):
    with pytest.raises(ValueError):
        rh.top_k(bad, 1)


def test_top_k_refuses_unknown_method():
    with pytest.raises(ValueError, match="method"):
        rh.top_k(np.arange(3.0), 1, method="heap")


# --------------------------------------------------------------------- search
# BLAS may round a row's dot product differently depending on where the row
# falls in the matrix (unrolled loops, tails, threads), so two computations of
# "the same" scores can differ in the last bit and swap near-ties. Two kinds of
# test follow: exactly representable vectors, where every order of summation
# gives the same scores and the contract can be checked bit for bit; and
# random vectors, checked for consistency within float tolerance.


@st.composite
def exact_corpus(draw, max_n: int = 60):
    """Unit vectors with four entries of +-0.5: every dot product is a multiple of 1/4, exactly."""
    d = draw(st.integers(4, 12))
    n = draw(st.integers(1, max_n))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))

    def vectors(count):
        out = np.zeros((count, d), dtype=np.float32)
        for row in out:
            row[rng.choice(d, 4, replace=False)] = rng.choice([-0.5, 0.5], 4)
        return out

    return vectors(draw(st.integers(1, 5))), vectors(n)


@given(exact_corpus(), st.data(), st.sampled_from([16, 64, 256, rh.retrieval.SCORE_BLOCK_BYTES]))
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


@given(corpus(), st.integers(1, 4), st.data(), st.sampled_from([64, 1024, rh.retrieval.SCORE_BLOCK_BYTES]))
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
