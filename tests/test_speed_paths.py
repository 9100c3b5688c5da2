"""The fast paths added for speed, each against the plain reference it replaces.

* ``check_scores``' fast path (min and max, no temporary arrays) must raise
  exactly when the plain per-element check would, with the same message.
* ``search``'s block merge (only scores above the running k-th best become
  candidates, or the block's own top k when there are many) must give the
  stable argsort of all the scores, ties included, in both branches.
No timing here: the benchmarks (``python -m benchmarks``) measure speed.
"""
from __future__ import annotations

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import rag_helpers as rh
from rag_helpers.blocked_search import _merge_block
from rag_helpers.scoring import check_scores
from rag_helpers.topk import top_k_rows
from rag_helpers.vectors import UNIT_TOLERANCE


def reference_top_k_rows(scores: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


# --------------------------------------------------------------- check_scores
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
        patch.setattr(rh.blocked_search, "_FEW_CANDIDATES", few)
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
@pytest.mark.parametrize("block_bytes", [4 * 64, 4 * 1000, rh.blocked_search.SCORE_BLOCK_BYTES])
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
def test_a_bad_document_in_a_later_block_is_named(n_queries, spoil, message):
    # Later blocks are scored one row per document, (b, q): the error must
    # still name the document, not a query.
    rng = np.random.default_rng(8)
    docs = rh.l2_normalize(rng.standard_normal((100, 4)).astype(np.float32))
    queries = docs[:n_queries] if n_queries > 1 else docs[0]
    spoil(docs[77])
    with pytest.raises(ValueError, match=message):
        rh.search(queries, docs, 3, block_bytes=4 * 10 * n_queries)
