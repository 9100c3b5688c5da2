"""``rh.l2_normalize`` and ``check_unit_rows``: the taught normalization, with checks.

The algorithm is notebook 02's ``l2_normalize`` (``rag_helpers/normalization.py``):
divide each row by its L2 norm. This module adds what a library needs around
it: clear errors for rows that have no direction (zeros) or no value (NaN,
infinity), the dtype rules, and a rescaling that keeps the squares inside the
float range for any finite input. ``tests/test_vectors.py`` checks that on
ordinary input it gives the taught function's result.
"""
from __future__ import annotations

import math

import numpy as np

from .._infra.validation import as_float_array, describe_rows
from ..normalization import l2_normalize as taught_l2_normalize

__all__ = ["l2_normalize", "check_unit_rows"]

#: How far from 1 a norm may be and still count as "unit length".
#: float16 inputs round to about 1e-3, float32 to about 1e-7.
UNIT_TOLERANCE = 1e-3
# Rows normalized at a time: 512 x 384 float64 is 1.5 MB per temporary, which
# stays in the CPU's cache (measured: smaller blocks were faster than 4096).
_BLOCK_ROWS = 512


def _where(name: str, ndim: int, rows: np.ndarray) -> str:
    """ "x" for a single vector, "x in row(s) 3, 7" for a matrix."""
    return name if ndim == 1 else f"{name} in row(s) {describe_rows(rows)}"


def l2_normalize(x: np.ndarray, *, name: str = "x") -> np.ndarray:
    """Scale each row of ``x`` to unit L2 norm.

    Parameters
    ----------
    x : (n, d) or (d,) array of floats (or ints)
        The vectors. A 1-D array is one vector.

    Returns
    -------
    Array of the same shape. float32 and float64 inputs keep their dtype;
    integer inputs become float64.

    Raises
    ------
    ValueError
        If a row is all zeros (it has no direction), or holds NaN or infinity,
        or if ``x`` is empty. The message lists the offending rows.
    """
    arr = as_float_array(x, name=name)
    rows = arr.reshape(1, -1) if arr.ndim == 1 else arr

    finite = np.isfinite(rows).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise ValueError(f"{_where(name, arr.ndim, bad)} has NaN or infinite values")

    # Dividing by the largest |value| first keeps the squares away from float
    # overflow (1e30**2 in float32) and underflow (1e-30**2): the largest
    # becomes +-1, so the sum of squares lies in [1, d]. The direction, and
    # so the result, does not change. Working in float64 keeps float16/32
    # rows exact to their last digit.
    scale = np.abs(rows).max(axis=1, keepdims=True).astype(np.float64)  # (n, 1)
    if (scale == 0).any():
        bad = np.flatnonzero(scale[:, 0] == 0)
        raise ValueError(
            f"{_where(name, arr.ndim, bad)} is all zeros: a zero vector has no direction, "
            "so it cannot be normalized (its cosine with anything is undefined)"
        )
    # In blocks of rows: the float64 temporaries stay small however many rows
    # there are (a million 384-d embeddings would need GBs at once).
    out = np.empty(rows.shape, dtype=arr.dtype)
    for start in range(0, len(rows), _BLOCK_ROWS):
        block = slice(start, start + _BLOCK_ROWS)
        out[block] = taught_l2_normalize(rows[block] / scale[block])
    return out.reshape(arr.shape)


def check_unit_rows(x: np.ndarray, *, name: str, tolerance: float = UNIT_TOLERANCE) -> None:
    """Raise ``ValueError`` unless every row of ``x`` is finite with norm within ``tolerance`` of 1.

    Reads all of ``x``: use it on queries and small matrices, not on every
    search over a million documents.
    """
    # One pass decides the usual case: a NaN or infinite value makes its
    # row's norm NaN or infinite, which fails these tests too. (For a single
    # vector, one dot product: a query is checked on every search.)
    if x.ndim == 1 and abs(math.sqrt(abs(float(np.dot(x, x)))) - 1.0) <= tolerance:
        return
    rows = x.reshape(1, -1) if x.ndim == 1 else x
    norms = np.sqrt(np.einsum("ij,ij->i", rows, rows, dtype=np.float64))
    if (np.abs(norms - 1.0) <= tolerance).all():
        return
    if not np.isfinite(rows).all():
        bad = np.flatnonzero(~np.isfinite(rows).all(axis=1))
        raise ValueError(f"{_where(name, x.ndim, bad)} has NaN or infinite values")
    off = np.abs(norms - 1.0) > tolerance
    if off.any():
        bad = np.flatnonzero(off)
        raise ValueError(
            f"{_where(name, x.ndim, bad)} is not L2-normalized: norm "
            f"{norms[bad[0]]:.6g} instead of 1 (call rag_helpers.l2_normalize first)"
        )
