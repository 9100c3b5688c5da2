"""Every fast path behind notebook 10's steps gives the taught function's results on valid input.

The taught functions are ``rag_helpers.scaling`` (generated from the notebook's ``#| export``
cells): a few lines each. ``rh.binary_codes`` and ``rh.search_binary`` (``engine/quantization.py``)
keep their contract with a blocked Hamming scan on 64-bit words, a running shortlist and batches
of queries; ``quantize_int8``, ``search_int8`` and ``search_float16`` scan blocks of rows.
"""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import exact_corpus, unit_corpus

import rag_helpers as rh
from rag_helpers import scaling as taught
from rag_helpers.engine import quantization


def _shortlist(draw, n, k):
    return draw(st.one_of(st.integers(k, max(k, n)), st.integers(n, n + 5)))


@settings(max_examples=200, deadline=None)
@given(exact_corpus(), st.data())
def test_search_binary_gives_the_taught_shortlist_and_rescore(corpus, data):
    """Dot products exact in any order: the very same indices and scores, ties included."""
    queries, docs = corpus
    n = len(docs)
    k = data.draw(st.integers(1, n))
    m = _shortlist(data.draw, n, k)
    codes = rh.binary_codes(docs)
    indices, scores = rh.search_binary(queries, codes, docs, k, shortlist=m)   # a batch
    for row, query in enumerate(queries):
        want_idx, want_scores = taught.search_binary(query, codes, docs, k, m)
        assert indices[row].tolist() == want_idx.tolist()
        np.testing.assert_array_equal(scores[row], want_scores)
        one_idx, one_scores = rh.search_binary(query, codes, docs, k, shortlist=m)   # one query
        assert one_idx.tolist() == want_idx.tolist()
        np.testing.assert_array_equal(one_scores, want_scores)


@settings(max_examples=200, deadline=None)
@given(unit_corpus(max_n=300, max_d=70), st.data())
def test_search_binary_on_real_valued_vectors(corpus, data):
    """Any unit vectors (duplicate rows: exact ties): the same shortlist, scores to float tolerance."""
    queries, docs = corpus
    n = len(docs)
    k = data.draw(st.integers(1, n))
    m = _shortlist(data.draw, n, k)
    codes = rh.binary_codes(docs)
    for query in queries:
        want_idx, want_scores = taught.search_binary(query, codes, docs, k, m)
        got_idx, got_scores = rh.search_binary(query, codes, docs, k, shortlist=m)
        np.testing.assert_allclose(got_scores, want_scores, rtol=1e-5, atol=1e-6)
        if m < n:   # the shortlist itself is exact (integer distances): the very same indices
            assert got_idx.tolist() == want_idx.tolist()
        else:       # every document rescored: exact search, the same scores (ties may differ in the last bit)
            np.testing.assert_allclose(docs[got_idx] @ query, want_scores, rtol=1e-5, atol=1e-6)


@settings(max_examples=200, deadline=None)
@given(unit_corpus(max_n=300, max_d=200), st.booleans())
def test_binary_codes_and_hamming_distances_are_the_taught_ones(corpus, centered):
    queries, docs = corpus
    center = docs.mean(axis=0) if centered else None
    shift = 0 if center is None else center
    codes = rh.binary_codes(docs, center=center)
    np.testing.assert_array_equal(codes, taught.binary_codes(docs - shift))
    np.testing.assert_array_equal(rh.binary_codes(queries[0], center=center), taught.binary_codes(queries[0] - shift))
    query_code = taught.binary_codes(queries[0] - shift)
    np.testing.assert_array_equal(quantization.hamming_distances(query_code, codes),
                                  taught.hamming_distances(query_code, codes))


@settings(max_examples=100, deadline=None)
@given(unit_corpus(max_n=200, max_d=40), st.data())
def test_int8_and_float16_are_the_taught_ones(corpus, data):
    queries, docs = corpus
    peaks = np.abs(docs).max(axis=0)
    if (peaks == 0).any():   # a dimension that is 0 everywhere: the engine takes scale 1, the taught code divides by 0
        return
    codes, scale = taught.quantize_int8(docs)
    fast = quantization.quantize_int8(docs)
    np.testing.assert_array_equal(fast.codes, codes)
    np.testing.assert_array_equal(fast.scale, scale)
    np.testing.assert_array_equal(quantization.to_float16(docs), taught.to_float16(docs))
    k = data.draw(st.integers(1, len(docs)))
    for query in queries:
        want = taught.int8_scores(query, codes, scale)
        idx, vals = quantization.search_int8(query, fast, k)
        np.testing.assert_allclose(vals, np.sort(want)[::-1][:k], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(want[idx], vals, rtol=1e-5, atol=1e-6)
        want16 = taught.float16_scores(query, taught.to_float16(docs))
        idx16, vals16 = quantization.search_float16(query, quantization.to_float16(docs), k)
        np.testing.assert_allclose(vals16, np.sort(want16)[::-1][:k], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(want16[idx16], vals16, rtol=1e-5, atol=1e-6)


def test_search_binary_reads_a_memory_map_like_an_array(tmp_path):
    rng = np.random.default_rng(1)
    docs = rh.l2_normalize(rng.standard_normal((500, 48)).astype(np.float32))
    taught.save_vectors(tmp_path / "v.npy", docs)
    mapped = taught.open_vectors(tmp_path / "v.npy")
    assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
    codes = rh.binary_codes(docs)
    for query in docs[:5]:
        want = taught.search_binary(query, codes, docs, 5, 40)
        for got in (taught.search_binary(query, codes, mapped, 5, 40), rh.search_binary(query, codes, mapped, 5, shortlist=40)):
            assert got[0].tolist() == want[0].tolist()
            np.testing.assert_array_equal(got[1], want[1])
    del mapped
