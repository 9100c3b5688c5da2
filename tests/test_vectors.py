"""l2_normalize: unit rows for every finite non-zero input, clear errors otherwise."""
from __future__ import annotations

import hypothesis.extra.numpy as hnp
import mpmath
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import rag_helpers as rh
from rag_helpers.normalization import l2_normalize as taught_l2_normalize

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


def exact_unit_rows(x: np.ndarray) -> np.ndarray:
    """The reference: each row over its norm, computed by mpmath with 200-bit floats, then rounded.

    Exact to the last bit before rounding, for any exponent (mpmath floats neither
    overflow nor underflow), and written independently of rag_helpers.
    """
    with mpmath.workprec(200):
        out = np.empty(x.shape, dtype=np.float64)
        for i, row in enumerate(np.atleast_2d(x)):
            values = [mpmath.mpf(float(v)) for v in row]
            norm = mpmath.sqrt(mpmath.fsum(v * v for v in values))
            out.reshape(-1, x.shape[-1])[i] = [float(v / norm) for v in values]
    return out


@given(nonzero_matrices(np.float64))
def test_equals_the_exact_reference_even_for_extreme_magnitudes(x):
    # Values up to 1e308 and down to 1e-308 (subnormals too), where the squares
    # of the taught one-liner overflow to inf or underflow to 0.
    y = rh.l2_normalize(x)
    assert (np.sign(y)[y != 0] == np.sign(x)[y != 0]).all()  # the direction is kept
    np.testing.assert_allclose(y, exact_unit_rows(x), rtol=1e-13, atol=1e-300)


@given(nonzero_matrices(np.float32))
def test_float32_equals_the_exact_reference_rounded_to_float32(x):
    y = rh.l2_normalize(x)
    np.testing.assert_allclose(y, exact_unit_rows(x.astype(np.float64)).astype(np.float32), rtol=2e-7, atol=1e-38)


moderate_rows = hnp.arrays(
    st.sampled_from([np.float32, np.float64]),
    hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=40),
    elements=st.floats(-1e6, 1e6, width=32),
).filter(lambda a: (np.abs(a).max(axis=-1) > 1e-3).all())


@given(moderate_rows)
def test_equals_the_taught_function_on_ordinary_input(x):
    """The notebook's one-liner and rh.l2_normalize agree wherever the one-liner's squares stay in range."""
    taught = taught_l2_normalize(x)
    y = rh.l2_normalize(x)
    assert y.shape == taught.shape and y.dtype == taught.dtype
    rtol = 1e-6 if x.dtype == np.float32 else 1e-13
    np.testing.assert_allclose(y, taught, rtol=rtol, atol=rtol * 1e-3)


@given(moderate_rows)
def test_agrees_with_torch_normalize(x):
    """A maintained implementation we did not write: torch.nn.functional.normalize."""
    reference = torch.nn.functional.normalize(torch.from_numpy(np.ascontiguousarray(x)), dim=-1).numpy()
    rtol = 1e-6 if x.dtype == np.float32 else 1e-13
    np.testing.assert_allclose(rh.l2_normalize(x), reference, rtol=rtol, atol=rtol * 1e-3)


@given(nonzero_matrices(np.float64), st.integers(1, 5))
def test_blocks_of_rows_cover_every_row(x, block_rows):
    import rag_helpers.engine.vectors as vectors

    saved = vectors._BLOCK_ROWS
    vectors._BLOCK_ROWS = block_rows  # a tiny block: most matrices here span several
    try:
        y = rh.l2_normalize(x)
    finally:
        vectors._BLOCK_ROWS = saved
    np.testing.assert_allclose(y, exact_unit_rows(x), rtol=1e-13, atol=1e-300)


def test_the_taught_function_overflows_where_rh_l2_normalize_does_not():
    # Why rh.l2_normalize rescales first: the one-liner's squares leave the float32 range.
    x = np.array([[3e20, 4e20], [3e-25, 4e-25]], dtype=np.float32)
    with np.errstate(all="ignore"):
        assert not np.allclose(taught_l2_normalize(x), [[0.6, 0.8], [0.6, 0.8]])
    np.testing.assert_allclose(rh.l2_normalize(x), [[0.6, 0.8], [0.6, 0.8]], rtol=1e-7)


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
