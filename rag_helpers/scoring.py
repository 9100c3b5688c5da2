# Generated from notebooks/03_vectorized_scoring.ipynb by tools/nbexport.py: edit the notebook, not this file.
# Each block below is one `#| export` cell of the notebook, verbatim, in order.

"""Step 3 of RAG (notebook 03): score every document against the query.

For unit vectors the cosine similarity is the dot product, so the scores of a
whole corpus are one matrix-vector product, docs @ query. cosine_scores_loop
is the same arithmetic as a plain Python loop: the baseline that shows what
the matrix-vector product saves.
"""
import numpy as np


def cosine_scores_loop(query: list[float], docs: list[list[float]]) -> list[float]:
    """The dot product of the query with every document, one multiply-add at a time.

    query: d numbers; docs: n rows of d numbers. Python lists (array.tolist()):
    looping over a NumPy array would pay for a NumPy scalar at every step.
    Returns n Python floats (float64); for unit vectors, n cosines.
    """
    scores = []
    for doc in docs:
        total = 0.0
        for a, b in zip(doc, query):
            total += a * b  # added in order, one by one: the same steps for every row
        scores.append(total)
    return scores


def cosine_scores(query: np.ndarray, docs: np.ndarray) -> np.ndarray:
    """Cosine similarity of the query (or of each query) with every document.

    query: (d,) one query, or (q, d) one query per row; unit rows.
    docs: (n, d) one document per row; unit rows, float32 (or float64).
    Returns (n,) scores for one query, (q, n) for a batch, in docs' dtype.
    """
    if query.ndim == 1:
        return docs @ query  # (n, d) @ (d,) -> (n,): one matrix-vector product
    # (q, d) @ (d, n) -> (q, n): one matrix-matrix product, which can use each
    # document row for every query while it is in the CPU's cache.
    return query @ docs.T
