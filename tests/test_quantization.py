"""float16, int8 and binary codes (rag_helpers.engine.quantization) against plain references.

* binary_codes is np.packbits(x > 0) (of x - center when centered);
* the blocked Hamming scan equals np.bitwise_count(codes ^ q).sum(1), and its
  shortlist the stable argsort of those distances (ties to lower indices);
* search_binary keeps search's contract, and with every code rescored it is
  search, bit for bit;
* int8 codes are within scale / 2 of the values, and their scores within the
  bound that follows;
* bad input is refused early, with a message naming what is wrong.
Speed and recall at scale are measured in benchmarks/scale.py, not here.
"""
from __future__ import annotations

import contextlib

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rag_helpers as rh
from rag_helpers.engine import quantization as qz
from rag_helpers.engine.corpus import load_labelled_questions
from strategies import exact_corpus, unit_corpus


def reference_top_k(scores: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-scores, kind="stable")[:k]


@contextlib.contextmanager
def small_blocks():
    """Blocks of 7 codes and 5 casts, so that small inputs cross many block boundaries."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(qz, "_HAMMING_BLOCK_ROWS", 7)
        patch.setattr(qz, "_CAST_BLOCK_ROWS", 5)
        patch.setattr(qz, "_QUANTIZE_BLOCK_ROWS", 6)
        yield


# ------------------------------------------------------------- binary codes
values = st.one_of(st.floats(-2, 2, width=32), st.sampled_from([0.0, -0.0, 1e-30, -1e-30]))


@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, max_side=40), elements=values))
def test_binary_codes_are_packbits_of_the_signs(x):
    codes = qz.binary_codes(x)
    np.testing.assert_array_equal(codes, np.packbits(x > 0, axis=1))
    assert codes.dtype == np.uint8 and codes.shape == (x.shape[0], -(-x.shape[1] // 8))


@given(hnp.arrays(np.float64, st.integers(1, 30), elements=st.floats(-1, 1)), st.data())
def test_centered_codes_are_the_signs_of_x_minus_center(x, data):
    center = data.draw(hnp.arrays(np.float64, x.shape, elements=st.floats(-1, 1)))
    np.testing.assert_array_equal(qz.binary_codes(x, center=center), np.packbits(x - center > 0))
    np.testing.assert_array_equal(qz.binary_codes(x[None], center=center)[0], qz.binary_codes(x, center=center))


def test_binary_codes_in_blocks_equal_one_pass():
    with small_blocks():
        x = np.random.default_rng(0).standard_normal((50, 19))
        np.testing.assert_array_equal(qz.binary_codes(x), np.packbits(x > 0, axis=1))


def test_binary_codes_refuse_non_finite_rows_by_number():
    with small_blocks():
        x = np.ones((20, 9))
        x[13, 4] = np.nan
        with pytest.raises(ValueError, match=r"NaN or infinite values in row\(s\) 13"):
            qz.binary_codes(x)
        with pytest.raises(TypeError, match="real-valued"):
            qz.binary_codes(np.array([["a", "b"]]))
        with pytest.raises(ValueError, match=r"center must be a finite \(9,\) vector"):
            qz.binary_codes(np.ones((2, 9)), center=np.ones(8))


# ------------------------------------------------------------ Hamming scan
@st.composite
def code_sets(draw):
    """(codes (n, nbytes), query (nbytes,)): few distinct rows, so distances tie often."""
    nbytes = draw(st.sampled_from([1, 2, 3, 4, 6, 8, 12, 16, 48]))  # word widths 1, 2, 4 and 8 bytes
    n = draw(st.integers(1, 60))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    pool = rng.integers(0, 256, size=(draw(st.integers(1, 6)), nbytes), dtype=np.uint8)
    codes = pool[rng.integers(0, len(pool), size=n)]
    return codes, rng.integers(0, 256, size=nbytes, dtype=np.uint8)


@given(code_sets())
def test_hamming_distances_equal_the_plain_popcount(case):
    with small_blocks():
        codes, query = case
        reference = np.unpackbits(codes ^ query, axis=1).sum(axis=1)
        distances = qz.hamming_distances(query, codes)
        assert distances.dtype == np.uint16
        np.testing.assert_array_equal(distances, reference)


@given(code_sets(), st.data())
def test_shortlist_is_the_stable_argsort_of_the_distances(case, data):
    with small_blocks():
        codes, query = case
        m = data.draw(st.integers(1, len(codes)))
        reference = np.argsort(np.unpackbits(codes ^ query, axis=1).sum(axis=1), kind="stable")[:m]
        np.testing.assert_array_equal(qz.hamming_shortlist(query, codes, m), np.sort(reference))


def test_shortlist_agrees_with_faiss_index_binary_flat():
    faiss = pytest.importorskip("faiss")
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 256, size=(5000, 48), dtype=np.uint8)
    query = rng.integers(0, 256, size=48, dtype=np.uint8)
    index = faiss.IndexBinaryFlat(384)
    index.add(codes)
    distances, found = index.search(query[None], 50)
    ours = qz.hamming_shortlist(query, codes, 50)
    mine = qz.hamming_distances(query, codes)
    # The same distances; documents may differ only among ties at the cut.
    np.testing.assert_array_equal(np.sort(mine[ours]), np.sort(distances[0]))
    assert set(ours) >= set(found[0][distances[0] < distances[0].max()])


# ---------------------------------------------------------- search_binary
@given(unit_corpus(max_n=80, max_d=70), st.data())
def test_search_binary_with_every_code_rescored_is_search(data, draw):
    queries, docs = data
    k = draw.draw(st.integers(1, len(docs)))
    codes = qz.binary_codes(docs)
    shortlist = draw.draw(st.integers(len(docs), len(docs) + 3))
    for q in (queries, queries[0]):
        got, expected = qz.search_binary(q, codes, docs, k, shortlist=shortlist), rh.search(q, docs, k)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])


@given(exact_corpus(), st.data())
def test_rescored_shortlist_is_the_exact_top_k_of_its_codes(data, draw):
    with small_blocks():
        # Exact corpora: every score is exact in float32, so rescoring a shortlist
        # must give precisely the stable argsort of the shortlist's scores.
        queries, docs = data
        n = len(docs)
        k = draw.draw(st.integers(1, n))
        m = draw.draw(st.integers(k, n))
        codes = qz.binary_codes(docs)
        indices, scores = qz.search_binary(queries, codes, docs, k, shortlist=m)
        assert indices.shape == scores.shape == (len(queries), k)
        assert indices.dtype == np.int64 and scores.dtype == np.float32
        for r, query in enumerate(queries):
            listed = qz.hamming_shortlist(qz.binary_codes(query), codes, m)
            exact = docs[listed].astype(np.float64) @ query.astype(np.float64)
            expected = listed[reference_top_k(exact, k)]
            np.testing.assert_array_equal(indices[r], expected)
            np.testing.assert_array_equal(scores[r], docs[expected].astype(np.float64) @ query)
        if m == n:  # everything rescored: the exact search itself
            np.testing.assert_array_equal(indices, rh.search(queries, docs, k)[0])


@given(unit_corpus(max_n=60, max_d=70), st.data())
def test_search_binary_contract_on_random_vectors(data, draw):
    queries, docs = data
    k = draw.draw(st.integers(1, len(docs)))
    m = draw.draw(st.integers(k, len(docs)))
    center = docs.mean(axis=0) if draw.draw(st.booleans()) else None
    codes = qz.binary_codes(docs, center=center)
    indices, scores = qz.search_binary(queries[0], codes, docs, k, shortlist=m, center=center)
    assert indices.shape == (k,) and scores.shape == (k,)
    assert len(set(indices.tolist())) == k
    np.testing.assert_allclose(scores, docs[indices].astype(np.float64) @ queries[0], atol=1e-6)
    assert (np.diff(scores) <= 0).all()  # best first
    listed = qz.hamming_shortlist(qz.binary_codes(queries[0], center=center), codes, m)
    assert set(indices.tolist()) <= set(listed.tolist())


def test_default_shortlist_rescores_everything_in_a_small_corpus(sample_embeddings):
    # 10 documents, a default of 2,000 codes: the exact search, on real embeddings.
    codes = qz.binary_codes(sample_embeddings)
    query = sample_embeddings[3]
    got, expected = qz.search_binary(query, codes, sample_embeddings, 4), rh.search(query, sample_embeddings, 4)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    assert qz.default_shortlist(10, 10**6) == 2000 and qz.default_shortlist(10, 100) == 100


def test_sign_bits_of_real_embeddings_track_their_cosines(encoder):
    # The premise of binary search: on real embeddings, fewer differing signs
    # means a higher cosine (a strong rank correlation, not a perfect one).
    texts = [q.question for q in load_labelled_questions("all")][:120]
    vectors = rh.embed(texts, encoder)
    codes = qz.binary_codes(vectors)
    hamming = qz.hamming_distances(codes[0], codes[1:]).astype(np.float64)
    cosine = vectors[1:] @ vectors[0]
    rank = lambda x: np.argsort(np.argsort(x))  # noqa: E731
    assert np.corrcoef(rank(-hamming), rank(cosine))[0, 1] > 0.5
    found, _ = qz.search_binary(vectors[:20], codes, vectors, 5, shortlist=40)
    exact, _ = rh.search(vectors[:20], vectors, 5)
    assert np.mean([len(set(a) & set(b)) / 5 for a, b in zip(found, exact)]) >= 0.8


def test_search_binary_reads_a_memory_map_and_float16_rescoring_vectors(tmp_path):
    rng = np.random.default_rng(4)
    docs = rh.l2_normalize(rng.standard_normal((300, 24)).astype(np.float32))
    np.save(tmp_path / "docs.npy", docs)
    mapped = np.load(tmp_path / "docs.npy", mmap_mode="r")
    codes = qz.binary_codes(docs)
    got = qz.search_binary(docs[:3], codes, mapped, 5, shortlist=50)
    np.testing.assert_array_equal(got[0], qz.search_binary(docs[:3], codes, docs, 5, shortlist=50)[0])
    half, _ = qz.search_binary(docs[:3], codes, docs.astype(np.float16), 5, shortlist=50)
    np.testing.assert_array_equal(half[:, 0], [0, 1, 2])  # each document finds itself first


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda q, c, d: qz.search_binary(q, c[:, :2], d, 3), ValueError, r"codes must be \(50, 3\) uint8"),
        (lambda q, c, d: qz.search_binary(q, c.astype(np.int16), d, 3), ValueError, "codes must be"),
        (lambda q, c, d: qz.search_binary(q, c[:40], d, 3), ValueError, r"codes must be \(50, 3\)"),
        (lambda q, c, d: qz.search_binary(q, c, d, 5, shortlist=4), ValueError, "shortlist=4 is smaller than k=5"),
        (lambda q, c, d: qz.search_binary(q, c, d, 5, shortlist=2.5), (TypeError, ValueError),
         "shortlist must be a positive integer"),
        (lambda q, c, d: qz.search_binary(q, c, d, 51), ValueError,
         r"k=51 is larger than the number of documents \(50\)"),
        (lambda q, c, d: qz.search_binary(q[:5], c, d, 3), ValueError, "dimension mismatch"),
        (lambda q, c, d: qz.search_binary(q * 2, c, d, 3), ValueError, "query is not L2-normalized|query"),
        (lambda q, c, d: qz.search_binary(q, c, d, 3, shortlist=10, center=np.ones(3)), ValueError, "center must be"),
    ],
    ids=["narrow codes", "codes dtype", "too few codes", "shortlist < k", "shortlist float", "k > n",
         "dimension", "query not unit", "center shape"],
)
def test_search_binary_refuses_bad_input(call, error, message):
    rng = np.random.default_rng(5)
    docs = rh.l2_normalize(rng.standard_normal((50, 20)).astype(np.float32))
    with pytest.raises(error, match=message):
        call(docs[0], qz.binary_codes(docs), docs)


def test_search_binary_names_a_bad_document_in_the_shortlist():
    rng = np.random.default_rng(6)
    docs = rh.l2_normalize(rng.standard_normal((60, 16)).astype(np.float32))
    codes = qz.binary_codes(docs)
    docs[7] *= 3  # codes unchanged (same signs), vector no longer unit
    with pytest.raises(ValueError, match=r"not L2-normalized: row\(s\) 7"):
        qz.search_binary(docs[7] / 3, codes, docs, 3, shortlist=20)
    docs[7, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite values in row\(s\) 7"):
        qz.search_binary(docs[8], codes, docs, 3, shortlist=60 - 1)


# ------------------------------------------------------------------- int8
@given(unit_corpus(max_n=50, max_d=70), st.booleans())
def test_int8_codes_are_within_half_a_step_of_the_values(data, per_dimension):
    with small_blocks():
        _, docs = data
        codes = qz.quantize_int8(docs, per_dimension=per_dimension)
        assert codes.codes.dtype == np.int8 and codes.codes.shape == docs.shape
        assert codes.scale.dtype == np.float32 and codes.scale.shape == (docs.shape[1],)
        assert np.abs(codes.codes.astype(int)).max() <= 127
        # Rounding to the nearest step: at most half a step off (float rounding aside).
        error = np.abs(codes.dequantize().astype(np.float64) - docs)
        assert (error <= codes.scale * (0.5 + 1e-5) + 1e-12).all()
        if per_dimension:
            # Each dimension's largest |value| is a full-scale code: no range wasted.
            used = np.abs(docs).max(axis=0) > 0
            np.testing.assert_array_equal(np.abs(codes.codes.astype(int)).max(axis=0)[used], 127)
        else:
            assert (codes.scale == codes.scale[0]).all()


def test_a_dimension_that_is_always_zero_gets_codes_zero():
    docs = rh.l2_normalize(np.array([[1.0, 0.0, 1.0], [0.5, 0.0, -1.0]], dtype=np.float32))
    codes = qz.quantize_int8(docs)
    assert codes.scale[1] == 1 and (codes.codes[:, 1] == 0).all()


@given(unit_corpus(max_n=50, max_d=70), st.data())
def test_int8_scores_stay_within_their_error_bound(data, draw):
    with small_blocks():
        queries, docs = data
        k = draw.draw(st.integers(1, len(docs)))
        codes = qz.quantize_int8(docs)
        indices, scores = qz.search_int8(queries, codes, k)
        assert indices.shape == scores.shape == (len(queries), k) and scores.dtype == np.float32
        # |q . (x + e)  -  q . x| <= |e| <= |scale| / 2 for a unit query.
        bound = 0.5 * np.linalg.norm(codes.scale.astype(np.float64)) * (1 + 1e-5) + 1e-6
        exact = queries.astype(np.float64) @ docs.T.astype(np.float64)
        np.testing.assert_array_less(np.abs(scores - np.take_along_axis(exact, indices, axis=1)), bound)
        # And they are the top k of the int8 scores themselves, best first.
        approximate = queries.astype(np.float64) @ codes.dequantize().T.astype(np.float64)
        for r in range(len(queries)):
            kth = approximate[r][indices[r]].min()
            assert (np.delete(approximate[r], indices[r]) <= kth + 1e-6).all()
            assert (np.diff(scores[r]) <= 1e-7).all()


@given(exact_corpus(), st.data())
def test_int8_rescored_with_every_candidate_is_exact_search(data, draw):
    with small_blocks():
        queries, docs = data
        k = draw.draw(st.integers(1, len(docs)))
        codes = qz.quantize_int8(docs)
        indices, scores = qz.search_int8(queries, codes, k, doc_vecs=docs, rescore=len(docs))
        expected = rh.search(queries, docs, k)
        np.testing.assert_array_equal(indices, expected[0])
        np.testing.assert_array_equal(scores, expected[1])


def test_corrupt_int8_codes_are_refused_not_searched():
    docs = rh.l2_normalize(np.random.default_rng(7).standard_normal((40, 8)).astype(np.float32))
    good = qz.quantize_int8(docs)
    bad_codes = good.codes.copy()
    bad_codes[33] = 127  # every value at full scale: a vector much longer than 1
    with pytest.raises(ValueError, match=r"int8 codes of row\(s\) 33 give scores beyond"):
        qz.search_int8(np.abs(docs[0]) / np.linalg.norm(docs[0]), qz.Int8Codes(bad_codes, good.scale), 3)
    with pytest.raises(TypeError, match="codes must be an \\(n, d\\) int8 array"):
        qz.Int8Codes(good.codes.astype(np.int16), good.scale)
    with pytest.raises(ValueError, match="scale must hold finite positive numbers"):
        qz.Int8Codes(good.codes, np.zeros(8, dtype=np.float32))
    with pytest.raises(TypeError, match="Int8Codes"):
        qz.search_int8(docs[0], good.codes, 3)


# ---------------------------------------------------------------- float16
@given(exact_corpus(), st.data())
def test_float16_search_is_exact_search_of_the_float16_vectors(data, draw):
    with small_blocks():
        # +-0.5 is exact in float16 too: the float16 search must be the exact search.
        queries, docs = data
        k = draw.draw(st.integers(1, len(docs)))
        half = qz.to_float16(docs)
        assert half.dtype == np.float16
        got = qz.search_float16(queries, half, k)
        expected = rh.search(queries, docs, k)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])


@settings(max_examples=50)
@given(unit_corpus(max_n=80, max_d=70))
def test_float16_scores_move_less_than_5e_4(data):
    queries, docs = data
    k = len(docs)
    indices, scores = qz.search_float16(queries, qz.to_float16(docs), k)
    exact = queries.astype(np.float64) @ docs.T.astype(np.float64)
    np.testing.assert_array_less(np.abs(scores - np.take_along_axis(exact, indices, axis=1)), 5e-4)


def test_float16_refuses_what_it_cannot_search():
    docs = rh.l2_normalize(np.random.default_rng(8).standard_normal((10, 4)).astype(np.float32))
    with pytest.raises(TypeError, match="float16 array"):
        qz.search_float16(docs[0], docs, 2)
    with pytest.raises(ValueError, match="not L2-normalized|row"):
        qz.to_float16(docs * 2)
