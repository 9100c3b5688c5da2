# Generated from notebooks/02_normalization.ipynb by tools/nbexport.py: edit the notebook, not this file.
# Each block below is one `#| export` cell of the notebook, verbatim, in order.

"""Step 2 of RAG: scale vectors to length 1, so that a dot product is a cosine.

Notebook 02 proves that for unit vectors a . b = cos(angle between a and b).
Normalizing every vector once, when it is stored, makes each later
comparison a single dot product.
"""
import numpy as np


def l2_normalize(v: np.ndarray) -> np.ndarray:
    """Divide by the L2 norm: the same direction, length 1.

    v: (d,) one vector, or (n, d) one vector per row; float32 or float64.
    Returns the same shape and dtype, every row of length 1.

    A zero vector has no direction: its row comes back as NaN (0 / 0).
    rh.l2_normalize checks for that first, and refuses it.
    """
    # axis=-1: one length per row (for a single vector, its length).
    # keepdims=True: shape (n, 1), which divides the (n, d) rows one by one.
    return v / np.linalg.norm(v, axis=-1, keepdims=True)
