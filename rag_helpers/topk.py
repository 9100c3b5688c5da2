# Generated from notebooks/04_top_k.ipynb by tools/nbexport.py: edit the notebook, not this file.
# Each block below is one `#| export` cell of the notebook, verbatim, in order.

"""Step 4 of RAG (notebook 04): keep the k best documents, best first.

The definition: top_k(s, k) is np.argsort(-s, kind="stable")[:k], so equal
scores come out in document order, the earlier document first.
top_k_partition gives the same answer in O(n) with np.argpartition, which
matters at a million scores; search puts scoring (notebook 03) and top-k
together, for one question or a batch.
"""
import numpy as np

from rag_helpers.scoring import cosine_scores


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest scores, best first; equal scores in index order.

    scores: (n,) float, no NaN; 1 <= k <= n. Returns (k,) int64.
    """
    # Negate rather than reverse: a reversed ascending sort puts tied later
    # documents first. kind="stable" keeps equal scores in index order.
    return np.argsort(-scores, kind="stable")[:k]


def top_k_partition(scores: np.ndarray, k: int) -> np.ndarray:
    """The same indices as top_k(scores, k), in O(n): argpartition, then sort only k.

    scores: (n,) float, no NaN; 1 <= k <= n. Returns (k,) int64, best first,
    equal scores in index order.
    """
    candidates = np.argpartition(-scores, k - 1)[:k]  # the k best, unordered; ties at the cut arbitrary
    threshold = scores[candidates].min()              # the k-th best score
    above = np.flatnonzero(scores > threshold)        # ascending index order
    at_threshold = np.flatnonzero(scores == threshold)[: k - len(above)]  # the lowest indices of the tie
    winners = np.concatenate([above, at_threshold])   # (k,) in index order...
    return winners[np.argsort(-scores[winners], kind="stable")]  # ...which the stable sort keeps for ties


def search(query_vecs: np.ndarray, doc_vecs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best documents for one question or each of a batch, by cosine similarity.

    query_vecs: (d,) or (q, d) unit rows; doc_vecs: (n, d) unit rows; 1 <= k <= n.
    Returns (indices, scores): (k,) each for one question, (q, k) for a batch;
    best first, equal scores in index order (top_k's rule).
    """
    scores = cosine_scores(query_vecs, doc_vecs)  # (n,) or (q, n)
    if scores.ndim == 1:
        indices = top_k(scores, k)                # (k,)
        return indices, scores[indices]
    indices = np.stack([top_k(row, k) for row in scores])  # (q, k): one question at a time
    return indices, np.take_along_axis(scores, indices, axis=1)
