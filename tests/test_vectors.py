"""l2_normalize: unit rows for every finite non-zero input, clear errors otherwise."""
from __future__ import annotations

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import rag_helpers as rh

finite_floats = st.floats(allow_nan=False, allow_infinity=False, width=32)


def nonzero_matrices(dtype=np.float32):
    return hnp.arrays(
        dtype,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12),
        elements=st.floats(allow_nan=False, allow_infinity=False, width=np.dtype(dtype).itemsize * 8),
    ).filter(lambda a: (np.abs(a).max(axis=1) > 0).all())


@given(nonzero_matrices(np.float32))
def test_rows_have_unit_norm_float32(x):
    y = rh.l2_normalize(x)
    assert y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(y.astype(np.float64), axis=1), 1.0, atol=1e-6)


@given(nonzero_matrices(np.float64))
def test_rows_have_unit_norm_float64_even_for_extreme_magnitudes(x):
    # Includes values near 1e308 and 1e-308, where a naive sqrt(sum(x**2))
    # overflows to inf or underflows to 0.
    y = rh.l2_normalize(x)
    assert y.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), 1.0, rtol=1e-12)


@given(nonzero_matrices(np.float64))
def test_direction_is_kept(x):
    # Same direction: y is a positive multiple of x, row by row.
    y = rh.l2_normalize(x)
    # (A component far below the row's largest may round to 0, never flip sign.)
    assert (np.sign(y)[y != 0] == np.sign(x)[y != 0]).all()
    scale = np.abs(x).max(axis=1, keepdims=True)
    reference = (x / scale) / np.linalg.norm(x / scale, axis=1, keepdims=True)
    np.testing.assert_allclose(y, reference, rtol=1e-12, atol=1e-300)


@given(hnp.arrays(np.float64, st.integers(1, 30), elements=finite_floats).filter(lambda a: np.abs(a).max() > 0))
def test_one_vector_keeps_its_shape(v):
    y = rh.l2_normalize(v)
    assert y.shape == v.shape
    np.testing.assert_allclose(np.linalg.norm(y), 1.0, rtol=1e-12)


moderate_matrices = hnp.arrays(
    np.float32,
    hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12),
    elements=st.floats(-1e6, 1e6, width=32),
).filter(lambda a: (np.abs(a).max(axis=1) > 1e-6).all())


@given(moderate_matrices, st.floats(min_value=1e-3, max_value=1e3))
def test_scale_invariant(x, c):
    np.testing.assert_allclose(rh.l2_normalize(x * np.float32(c)), rh.l2_normalize(x), atol=2e-6)


def test_idempotent_on_unit_rows():
    x = rh.l2_normalize(np.random.default_rng(0).standard_normal((50, 384)).astype(np.float32))
    np.testing.assert_allclose(rh.l2_normalize(x), x, atol=1e-7)


def test_integers_become_float64():
    y = rh.l2_normalize(np.array([[3, 4]]))
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, [[0.6, 0.8]])


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.array([[1.0, 2.0], [0.0, 0.0]]), r"x in row\(s\) 1 is all zeros"),
        (np.zeros(3), "^x is all zeros"),
        (np.array([[1.0, np.nan]]), "NaN or infinite"),
        (np.array([[np.inf, 1.0]]), "NaN or infinite"),
        (np.array([[-np.inf, 1.0], [1.0, 1.0]]), "row\\(s\\) 0"),
        (np.zeros((0, 3)), "empty"),
        (np.ones((2, 2, 2)), "1-D or 2-D"),
    ],
)
def test_bad_vectors_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        rh.l2_normalize(bad)


def test_zero_row_error_names_the_row():
    x = np.ones((5, 3))
    x[3] = 0
    with pytest.raises(ValueError, match=r"row\(s\) 3"):
        rh.l2_normalize(x)


@pytest.mark.parametrize("bad", [np.array(["a", "b"]), np.array([1 + 2j]), [[1, None]]])
def test_non_numeric_is_a_type_error(bad):
    with pytest.raises(TypeError, match="real-valued numeric"):
        rh.l2_normalize(bad)
