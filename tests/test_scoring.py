"""scoring.py: cosine_scores and the loop baseline, against float64 references."""
from __future__ import annotations

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import rag_helpers as rh
from rag_helpers.engine.scoring import check_scores
from rag_helpers.engine.vectors import UNIT_TOLERANCE
from strategies import one_query_corpus


# ---------------------------------------------------------------- cosine_scores
@given(one_query_corpus())
def test_cosine_scores_match_float64_reference(data):
    query, docs = data
    scores = rh.cosine_scores(query, docs)
    assert scores.shape == (docs.shape[0],) and scores.dtype == np.float32
    reference = docs.astype(np.float64) @ query.astype(np.float64)
    np.testing.assert_allclose(scores, reference, atol=1e-6)

@given(one_query_corpus(max_n=25))
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


# ------------------------------------------- check_scores' fast path (min and max)
score_values = st.one_of(
    st.floats(-1.0, 1.0, width=32),
    st.sampled_from([np.nan, np.inf, -np.inf, 1.0 + 2 * UNIT_TOLERANCE, -1.5, 1.0 + UNIT_TOLERANCE / 2]),
)


@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, max_side=40), elements=score_values))
def test_check_scores_raises_exactly_when_the_plain_check_fails(scores):
    finite = np.isfinite(scores).all()
    in_range = finite and np.abs(scores).max() <= 1.0 + UNIT_TOLERANCE
    if in_range:
        check_scores(scores)
        return
    expected = "NaN or infinite" if not finite else "not L2-normalized"
    with pytest.raises(ValueError, match=expected):
        check_scores(scores, first_doc=100)


def test_check_scores_names_the_rows_after_the_fast_path_fails():
    scores = np.zeros((3, 50), dtype=np.float32)
    scores[1, 7] = np.nan
    with pytest.raises(ValueError, match=r"row\(s\) 107"):
        check_scores(scores, first_doc=100)
    scores[1, 7] = -1.2
    with pytest.raises(ValueError, match=r"row\(s\) 107 give a cosine of 1.2"):
        check_scores(scores, first_doc=100)
