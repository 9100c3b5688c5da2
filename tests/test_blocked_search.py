"""The block scan behind search (rag_helpers.engine.blocked_search), piece by piece, against plain references.

* the sort keys order (query, score) pairs exactly as (query ascending, score
  descending), -0.0 and 0.0 as equals;
* the running top k with its pending candidates, one thread or several, is
  the stable argsort of every score seen, ties included;
* every document is scored once, and the range check names bad documents;
* search over one block or many, with a few queries or one, is the stable
  argsort of the exact scores (every branch of the merge forced once).
No timing here: the benchmarks (``python -m benchmarks``) measure speed.
"""
from __future__ import annotations

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import rag_helpers as rh
from rag_helpers.engine import blocked_search as bs
from rag_helpers.engine.blocked_search import _merge_block
from rag_helpers.engine.topk import top_k_rows

floats32 = st.one_of(
    st.floats(width=32, allow_nan=False),
    st.sampled_from([0.0, -0.0, np.inf, -np.inf, 1e-45, -1e-45, 1.0, -1.0]),
)


@given(hnp.arrays(np.float32, st.integers(1, 60), elements=floats32), st.data())
def test_keys_sort_by_row_then_score_descending(values, data):
    rows = data.draw(hnp.arrays(np.int64, values.shape, elements=st.integers(0, 3)))
    order = np.argsort(bs._descending_key(rows, values), kind="stable")
    # The same order as a two-key stable sort on the values themselves
    # (-0.0 == 0.0 there too, so their relative order must be kept).
    reference = np.lexsort((-values.astype(np.float64), rows))
    np.testing.assert_array_equal(order, reference)


@st.composite
def score_matrix(draw):
    """(q, n) float32 scores in [-1, 1], often tied, and k."""
    q = draw(st.integers(1, 4))
    n = draw(st.integers(1, 200))
    levels = draw(st.sampled_from([3, 50, 10**6]))  # few distinct values: ties everywhere
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scores = (rng.integers(-levels, levels + 1, size=(q, n)) / levels).astype(np.float32)
    if draw(st.booleans()):
        scores = np.sort(scores, axis=1)  # rising: every block full of candidates
    return scores, draw(st.integers(1, n))


def scan(scores: np.ndarray, k: int, rows: int, workers: int, visited: list | None = None):
    """scan_top_k over a precomputed (q, n) score matrix."""
    def make_scorer():
        return lambda start, stop: np.ascontiguousarray(scores[:, start:stop].T)

    after = None if visited is None else (lambda start, stop: visited.append((start, stop)))
    return bs.scan_top_k(make_scorer, scores.shape[1], scores.shape[0], k, rows, workers=workers, after_block=after)


@given(score_matrix(), st.integers(1, 40), st.sampled_from([1, 2, 3]), st.sampled_from([0.0, 1 / 32, 1.0]))
def test_scan_is_the_stable_argsort_of_every_score(case, rows, workers, few):
    scores, k = case
    rows = max(rows, k)
    with pytest.MonkeyPatch.context() as patch:
        # Threads from the smallest inputs on, and both ways of taking candidates.
        patch.setattr(bs, "_MIN_BLOCKS_PER_WORKER", 1)
        patch.setattr(bs, "_FEW_CANDIDATES", few)
        visited: list = []
        indices, values = scan(scores, k, rows, workers, visited)
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_array_equal(values, np.take_along_axis(scores, expected, axis=1))
    covered = np.zeros(scores.shape[1], dtype=int)
    for start, stop in visited:
        covered[start:stop] += 1
    assert (covered == 1).all()  # every document scored exactly once


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("bad, message", [(np.nan, "NaN or infinite"), (1.5, "not L2-normalized"),
                                          (-1.5, "not L2-normalized"), (np.inf, "NaN or infinite")])
def test_a_bad_score_in_any_block_names_its_document(workers, bad, message):
    scores = np.linspace(-0.9, 0.9, 400, dtype=np.float32)[None, :]
    scores[0, 333] = bad
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bs, "_MIN_BLOCKS_PER_WORKER", 1)
        with pytest.raises(ValueError, match=rf"{message}.*row\(s\) 333"):
            scan(scores, 5, 16, workers)


def test_a_custom_range_check_is_called_on_scores_beyond_its_limit():
    scores = np.full((2, 50), 0.5, dtype=np.float32)
    scores[1, 44] = 3.0
    seen = []

    def check(block, first_doc):
        seen.append(first_doc + int(np.flatnonzero((np.abs(block) > 2).any(axis=0))[0]))
        raise ValueError("beyond the limit")

    with pytest.raises(ValueError, match="beyond the limit"):
        bs.scan_top_k(lambda: (lambda a, b: np.ascontiguousarray(scores[:, a:b].T)), 50, 2, 3, 10,
                      limit=2.0, check=check)
    assert seen == [44]
    indices, values = bs.scan_top_k(lambda: (lambda a, b: np.ascontiguousarray(scores[:, a:b].T)), 50, 2, 3, 10,
                                    limit=3.0, check=check)
    assert indices[1, 0] == 44 and values[1, 0] == 3.0


def test_rows_per_block_keeps_a_batch_in_cache_and_never_below_k():
    assert bs.rows_per_block(10, 1, 4, bs.SCORE_BLOCK_BYTES) == 65536
    assert bs.rows_per_block(10, 64, 4, bs.SCORE_BLOCK_BYTES) * 64 * 4 == bs._CACHE_BLOCK_BYTES
    assert bs.rows_per_block(500, 64, 4, 64) == 500


def reference_top_k_rows(scores: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


# ------------------------------------------------------------------ the merge
# Few distinct values: ties everywhere, across the running best and the block.
tie_scores = st.sampled_from([-1.0, -0.5, 0.0, 0.25, 0.5, 0.75, 1.0])


@st.composite
def merge_case(draw):
    q = draw(st.integers(1, 4))
    k = draw(st.integers(1, 12))
    seen = draw(st.integers(k, 40))
    b = draw(st.integers(1, 60))
    elements = draw(st.one_of(st.just(tie_scores), st.just(st.floats(-1, 1, width=32))))
    scores = draw(hnp.arrays(np.float32, (q, seen + b), elements=elements))
    return scores, seen, k


@pytest.mark.parametrize("few", [0.0, 1.0], ids=["block's own top k first", "candidates only"])
@given(case=merge_case())
def test_merge_block_is_the_stable_argsort_of_everything_seen(few, case):
    scores, seen, k = case
    best_idx, best_val = top_k_rows(scores[:, :seen], k)
    # Both branches of the merge, forced: with few = 0 any candidate means
    # "many", with few = 1 the candidates are always sorted themselves.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rh.engine.blocked_search, "_FEW_CANDIDATES", few)
        idx, val = _merge_block(best_idx, best_val, scores[:, seen:].T, seen)  # (b, q): one row per document
    expected = reference_top_k_rows(scores, k)
    np.testing.assert_array_equal(idx, expected)
    np.testing.assert_array_equal(val, np.take_along_axis(scores, expected, axis=1))


def _angle_docs(angles: np.ndarray, d: int = 8) -> np.ndarray:
    """Unit vectors whose score against e_0 is exactly cos(angle) in float32 (other terms are 0)."""
    docs = np.zeros((len(angles), d), dtype=np.float32)
    docs[:, 0] = np.cos(angles)
    docs[:, 1] = np.sin(angles)
    return rh.l2_normalize(docs)


@pytest.mark.parametrize(
    "order", ["rising", "falling", "tied", "random"],
    ids=["every block full of candidates", "no candidates after the first block", "all tied", "random"],
)
@pytest.mark.parametrize("k", [1, 7, 50])
@pytest.mark.parametrize("block_bytes", [4 * 64, 4 * 1000, rh.engine.blocked_search.SCORE_BLOCK_BYTES])
def test_search_over_many_blocks_matches_the_stable_argsort(order, k, block_bytes):
    n = 3000
    rng = np.random.default_rng(7)
    angles = {
        "rising": np.linspace(3.0, 0.0, n),
        "falling": np.linspace(0.0, 3.0, n),
        "tied": np.full(n, 0.5),
        "random": rng.uniform(0, 3, n),
    }[order]
    docs = _angle_docs(angles)
    # Queries e_0, -e_0 and e_1: one nonzero term per score, so every score is
    # exact in float32, in any order of summation, and the reference is exact.
    queries = np.zeros((3, docs.shape[1]), dtype=np.float32)
    queries[0, 0], queries[1, 0], queries[2, 1] = 1.0, -1.0, 1.0
    query = queries[0]
    indices, scores = rh.search(queries, docs, k, block_bytes=block_bytes)
    exact = queries.astype(np.float64) @ docs.T.astype(np.float64)
    for r in range(len(queries)):
        np.testing.assert_array_equal(indices[r], reference_top_k_rows(exact[r : r + 1], k)[0])
    one_index, _ = rh.search(query, docs, k, block_bytes=block_bytes)
    np.testing.assert_array_equal(one_index, indices[0])


@pytest.mark.parametrize("n_queries", [1, 3])
@pytest.mark.parametrize(
    "spoil, message",
    [
        (lambda row: row.__setitem__(2, np.nan), r"docs has NaN or infinite values in row\(s\) 77"),
        (lambda row: row.__imul__(3), r"docs is not L2-normalized: row\(s\) 77"),
    ],
    ids=["NaN", "not unit"],
)
@pytest.mark.parametrize("blocks", ["one block", "many blocks"])
def test_a_bad_document_is_named_in_any_block(n_queries, spoil, message, blocks):
    # Blocks are scored one row per document, (b, q): the error must still
    # name the document, not a query, whether the corpus is one block (the
    # one-query shortcut) or many.
    rng = np.random.default_rng(8)
    docs = rh.l2_normalize(rng.standard_normal((100, 4)).astype(np.float32))
    queries = docs[:n_queries] if n_queries > 1 else docs[0]
    spoil(docs[77])
    with pytest.raises(ValueError, match=message):
        rh.search(queries, docs, 3, block_bytes=4 * 10 * n_queries if blocks == "many blocks" else 2**23)
