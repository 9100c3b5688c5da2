"""Vector basics: L2 normalization.

After ``l2_normalize`` every row has length 1, so the dot product of two rows
*is* their cosine similarity (notebook 02 proves it).
"""
from __future__ import annotations

import math

import numpy as np

from ._infra.validation import as_float_array, describe_rows

__all__ = ["l2_normalize", "check_unit_rows"]

#: How far from 1 a norm may be and still count as "unit length".
#: float16 inputs round to about 1e-3, float32 to about 1e-7.
UNIT_TOLERANCE = 1e-3


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
    # overflow (1e30**2) and underflow (1e-30**2), so the norm is exact to
    # rounding for any finite input. float64 keeps float32 inputs exact too.
    scale = np.abs(rows).max(axis=1).astype(np.float64)
    if (scale == 0).any():
        bad = np.flatnonzero(scale == 0)
        raise ValueError(
            f"{_where(name, arr.ndim, bad)} is all zeros: a zero vector has no direction, "
            "so it cannot be normalized (its cosine with anything is undefined)"
        )
    scaled = rows / scale[:, None]
    norms = np.sqrt(np.einsum("ij,ij->i", scaled, scaled, dtype=np.float64))
    out = (scaled / norms[:, None]).astype(arr.dtype, copy=False)
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
