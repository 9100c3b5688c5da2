"""The public scoring, top-k and search give what notebooks 03 and 04 teach.

The taught functions are the course modules, generated from the notebooks'
``#| export`` cells: ``rag_helpers.scoring`` (``cosine_scores``, ``cosine_scores_loop``)
and ``rag_helpers.topk`` (``top_k``, ``top_k_partition``, ``search``). The public
names check their arguments, then call the taught function or a fast path:

- ``rh.cosine_scores`` / ``rh.cosine_scores_loop`` call the taught functions: the same numbers;
- ``rh.top_k`` calls the taught ``top_k`` on small inputs and ``top_k_rows`` (argpartition,
  tie repair, no negated copy) on large ones: the same indices, every method, ties included;
- ``top_k_rows`` (the batched top-k of search, BM25, hybrid): each row is the taught ``top_k``;
- ``rh.search`` runs the blocked scan (one-block fast path for one query, running top-k over
  blocks, two threads for a batch): the indices of the taught ``search`` and its scores to 1e-6.

On valid input, that is: the errors are tested in test_scoring, test_topk and test_retrieval.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rag_helpers as rh
from rag_helpers import scoring as taught_scoring
from rag_helpers import topk as taught_topk
from rag_helpers.engine import blocked_search
from rag_helpers.engine.topk import top_k_rows
from strategies import exact_corpus, tied_score_rows, unit_corpus


# ------------------------------------------------------------------ scoring (notebook 03)
@given(unit_corpus(max_n=80, max_d=24, max_queries=5))
def test_cosine_scores_are_the_taught_cosine_scores(data):
    queries, docs = data
    np.testing.assert_array_equal(rh.cosine_scores(queries[0], docs), taught_scoring.cosine_scores(queries[0], docs))
    np.testing.assert_array_equal(rh.cosine_scores(queries, docs), taught_scoring.cosine_scores(queries, docs))
    # float64 documents: the taught function in float64, the public one rounds to float32.
    docs64, queries64 = docs.astype(np.float64), queries.astype(np.float64)
    np.testing.assert_allclose(rh.cosine_scores(queries64, docs64), taught_scoring.cosine_scores(queries64, docs64),
                               rtol=1e-6, atol=1e-7)


@given(unit_corpus(max_n=30, max_d=16, max_queries=1))
def test_cosine_scores_loop_is_the_taught_loop(data):
    queries, docs = data
    taught = np.array(taught_scoring.cosine_scores_loop(queries[0].tolist(), docs.tolist()))
    np.testing.assert_array_equal(rh.cosine_scores_loop(queries[0], docs), taught.astype(np.float32))


# ------------------------------------------------------------------ top-k (notebook 04)
@given(tied_score_rows(max_rows=1, max_n=5000), st.data())
@settings(max_examples=150)
@pytest.mark.parametrize("method", ["auto", "argsort", "argpartition"])
def test_top_k_is_the_taught_top_k(method, rows, data):
    scores = rows[0]
    k = data.draw(st.integers(1, scores.shape[0]))
    expected = taught_topk.top_k(scores, k)
    np.testing.assert_array_equal(rh.top_k(scores, k, method=method), expected)
    np.testing.assert_array_equal(taught_topk.top_k_partition(scores, k), expected)


def test_auto_takes_the_partition_path_at_large_n_and_agrees():
    # Past 2048 scores with a small k, "auto" runs top_k_rows, not the taught sort.
    scores = np.round(np.random.default_rng(0).standard_normal(50_000), 2).astype(np.float32)  # ties at the cut
    for k in (1, 7, 100, 6_000):
        np.testing.assert_array_equal(rh.top_k(scores, k), taught_topk.top_k(scores, k))


@given(tied_score_rows(max_rows=6, max_n=400), st.data(), st.integers(0, 10**6))
def test_top_k_rows_is_the_taught_top_k_of_each_row(rows, data, offset):
    k = data.draw(st.integers(1, rows.shape[1]))
    indices, values = top_k_rows(rows, k, offset=offset)
    assert indices.shape == values.shape == (rows.shape[0], k) and indices.dtype == np.int64
    for row, row_idx, row_val in zip(rows, indices, values):
        expected = taught_topk.top_k(row, k)
        np.testing.assert_array_equal(row_idx - offset, expected)
        np.testing.assert_array_equal(row_val, row[expected])


# ------------------------------------------------------------------ search (notebooks 03 + 04)
BLOCK_BYTES = st.sampled_from([16, 64, 512, 4096, blocked_search.SCORE_BLOCK_BYTES])


@given(exact_corpus(max_n=200, max_d=12, max_queries=5), st.data(), BLOCK_BYTES)
def test_search_is_the_taught_search_exactly_where_the_scores_are_exact(data, draw, block_bytes):
    # Scores that are multiples of 1/4 come out the same in any summation order, so the fast path
    # (blocks, running top k, threads) must give the taught indices and scores bit for bit,
    # ties between blocks included.
    queries, docs = data
    k = draw.draw(st.integers(1, docs.shape[0]))
    for query in (queries[0], queries):
        indices, scores = rh.search(query, docs, k, block_bytes=block_bytes)
        want_indices, want_scores = taught_topk.search(query, docs, k)
        np.testing.assert_array_equal(indices, want_indices)
        np.testing.assert_array_equal(scores, want_scores)


@given(unit_corpus(max_n=200, max_d=24, max_queries=5), st.data(), BLOCK_BYTES)
def test_search_is_the_taught_search_on_random_vectors(data, draw, block_bytes):
    # Through BLAS a block's product may round a score differently from the taught one-call
    # product, in the last bit. So: the same scores to 1e-6, the same indices wherever the
    # taught scores are not that close, and nothing better than what was kept left out.
    queries, docs = data
    k = draw.draw(st.integers(1, docs.shape[0]))
    for query in (queries[0], queries):
        indices, scores = rh.search(query, docs, k, block_bytes=block_bytes)
        want_indices, want_scores = taught_topk.search(query, docs, k)
        assert indices.shape == want_indices.shape and scores.dtype == np.float32
        np.testing.assert_allclose(scores, want_scores, atol=1e-6)
        all_scores = np.atleast_2d(taught_scoring.cosine_scores(query, docs))
        for row, got, want in zip(all_scores, np.atleast_2d(indices), np.atleast_2d(want_indices)):
            # Each index returned holds the taught score of its rank (to 1e-6)...
            np.testing.assert_allclose(row[got], row[want], atol=1e-6)
            # ...and where a score is clear of every other by more than that, the index is the same.
            gaps = np.abs(row[want][:, None] - row[None, :])
            gaps[np.arange(k), want] = np.inf
            clear = gaps.min(axis=1) > 1e-6
            np.testing.assert_array_equal(got[clear], want[clear])


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([1, 3, 64]), st.sampled_from([1, 10, 100]))
def test_search_over_many_blocks_and_two_threads_is_the_taught_search(seed, n_queries, k):
    # 30,000 documents in blocks of 512 to 1024: the running top k over many blocks (one query)
    # and the two-thread scan with its final merge (a batch). Unit rows with four entries of
    # +-0.5 in 8 dimensions: exact scores in any order, and ties everywhere.
    rng = np.random.default_rng(seed)

    def vectors(count):
        out = np.zeros((count, 8), dtype=np.float32)
        where = np.argsort(rng.random((count, 8)), axis=1)[:, :4]
        np.put_along_axis(out, where, rng.choice(np.float32([-0.5, 0.5]), size=(count, 4)), axis=1)
        return out

    docs, queries = vectors(30_000), vectors(n_queries)
    indices, scores = rh.search(queries, docs, k, block_bytes=4 * n_queries * 1024)
    want_indices, want_scores = taught_topk.search(queries, docs, k)
    np.testing.assert_array_equal(indices, want_indices)
    np.testing.assert_array_equal(scores, want_scores)


def test_the_many_blocks_test_reaches_two_threads(monkeypatch):
    # The test above is only worth its name if the batch really is split between two threads.
    calls = []
    real = blocked_search._scan_range
    monkeypatch.setattr(blocked_search, "_scan_range", lambda *a: calls.append(a[1:3]) or real(*a))
    docs = np.zeros((30_000, 8), dtype=np.float32)
    docs[:, 0] = 1.0
    rh.search(docs[:3], docs, 10, block_bytes=4 * 3 * 1024)
    if blocked_search._BLAS_THREADS is not None and blocked_search.usable_cpus() > 1:
        assert len(calls) == 2, calls
