"""topk.py: top_k is exactly the stable argsort, ties included."""
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
