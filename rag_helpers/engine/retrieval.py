"""Retrieval: steps 3 and 4 put together, from vectors and from text.

``search`` is scoring (notebook 03, ``scoring.py``) and top-k (notebook 04,
``topk.py``) for one query or a batch; ``retrieve`` embeds a question and
returns the best documents themselves. Notebook 04 teaches search as scores
then a stable top-k (``rag_helpers.topk.search``); ``search`` checks its
arguments and gives the same answer through the fast path in
``blocked_search.py`` (tested: ``tests/test_fast_paths_03_04.py``), with
memory bounded whatever the size of the corpus. One query over a corpus
that fits one block, with arguments that pass every check, skips the
general checks' conversions (``tests/test_small_n_search.py``): at N = 1e3
they cost as long as the product itself.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .._infra.validation import check_k, check_positive_int, check_query_text, check_texts
from .blocked_search import SCORE_BLOCK_BYTES, rows_per_block, search_blocked, search_one_block
from .scoring import check_doc_norms, prepare_query_and_docs
from .vectors import UNIT_TOLERANCE

if TYPE_CHECKING:  # only for the annotation: `search` must not import torch
    from sentence_transformers import SentenceTransformer

__all__ = ["Hit", "search", "retrieve", "retrieve_with_numpy", "SCORE_BLOCK_BYTES"]


class Hit(tuple):
    """One retrieved document: a ``(score, document)`` pair that also knows where it came from.

    It unpacks and compares like the plain pair (``score, doc = hit``), and
    carries ``index`` (its row in the document list) and ``source`` (the
    ``Chunk`` it was cut from, or None); ``hit.location`` is ``path:line``
    (or ``path, page N``) for text from files.
    """

    def __new__(cls, score: float, document: str, index: int = -1, source: object = None) -> Hit:
        hit = super().__new__(cls, (score, document))
        hit.index, hit.source = index, source
        return hit

    @property
    def score(self) -> float:
        return self[0]

    @property
    def document(self) -> str:
        return self[1]

    @property
    def location(self) -> str | None:
        return getattr(self.source, "location", None)

    def __getnewargs__(self) -> tuple:  # copy and pickle keep the extras
        return (self[0], self[1], self.index, self.source)


def search(
    query_vecs: np.ndarray,
    doc_vecs: np.ndarray,
    k: int,
    *,
    block_bytes: int = SCORE_BLOCK_BYTES,
) -> tuple[np.ndarray, np.ndarray]:
    """The k best documents for each query, by cosine similarity.

    Parameters
    ----------
    query_vecs : (d,) or (q, d) float, unit rows
    doc_vecs : (n, d) float32 (or float64), unit rows
    k : int, 1 <= k <= n
    block_bytes : most bytes of scores held at once.

    Returns
    -------
    (indices, scores): (k,) int64 and (k,) float32 for one query, (q, k) each
    for a batch. Best first; equal scores in index order, exactly as
    ``np.argsort(-scores, kind="stable")[:k]``.

    What is checked: the query in full (finite, unit rows); the documents'
    shape and dtype; and, on their scores, documents with NaN or infinite
    values or norms well above 1 (a cosine outside [-1, 1]). What is NOT
    checked: document rows shorter than unit length, a zero row included.
    They give cosines that look valid and are ranked too low. Reading every
    row's norm would double the cost of a search, so ``search`` trusts the
    matrix it is given, as the embedding functions make it; verify a matrix
    from elsewhere once with ``vectors.check_unit_rows(doc_vecs, name=...)``.
    """
    if _is_plain_small_search(query_vecs, doc_vecs, k, block_bytes):
        return search_one_block(query_vecs, doc_vecs, k)
    q, docs = prepare_query_and_docs(query_vecs, doc_vecs)
    k = check_k(k, docs.shape[0])
    block_bytes = check_positive_int(block_bytes, "block_bytes")
    single = q.ndim == 1
    indices, scores = search_blocked(q[None, :] if single else q, docs, k, block_bytes)
    return (indices[0], scores[0]) if single else (indices, scores)


_FLOAT32, _FLOAT64 = np.dtype(np.float32), np.dtype(np.float64)
# Documents that always fit one block of scores for one query at the default
# block_bytes, whatever k (rows_per_block never goes below k).
_ONE_BLOCK_ROWS = min(rows_per_block(1, 1, itemsize, SCORE_BLOCK_BYTES) for itemsize in (4, 8))


def _is_plain_small_search(query: object, docs: object, k: object, block_bytes: object) -> bool:
    """True when ``search`` may skip its general checks: the arguments pass them all.

    One float32 (or float64) query of unit length, a document matrix of the
    same dimension and dtype that fits one block of scores, an int k
    in 1..n: what the general path would accept and send to
    ``search_one_block`` anyway. Plain attribute tests, each a fraction of a
    microsecond; at N = 1e3 the general checks (about ten NumPy and Python
    calls) cost as long as the product itself. Anything else, a mistake
    included, takes the general path, which raises its usual error.
    """
    if not (type(query) is np.ndarray and type(docs) is np.ndarray and type(k) is int
            and query.ndim == 1 and docs.ndim == 2):
        return False
    dtype = docs.dtype
    n, d = docs.shape
    # Identity, not equality: NumPy's float dtypes are singletons, and `is`
    # costs nothing; an equal dtype of another origin takes the general path.
    if not ((dtype is _FLOAT32 or dtype is _FLOAT64) and query.dtype is dtype and query.shape[0] == d
            and 1 <= k <= n):
        return False
    if block_bytes is SCORE_BLOCK_BYTES:  # the default: skip the arithmetic
        if n > _ONE_BLOCK_ROWS:
            return False
    elif not (type(block_bytes) is int and block_bytes >= 1
              and n <= rows_per_block(k, 1, dtype.itemsize, block_bytes)):
        return False
    # The query's unit-length test, as check_unit_rows makes it for one vector:
    # NaN and infinity fail it too (NaN compares False). d = 0 fails (norm 0).
    return abs(math.sqrt(abs(float(query.dot(query)))) - 1.0) <= UNIT_TOLERANCE  # the method: half np.dot's call cost


def retrieve(
    query: str,
    documents: Sequence[str],
    doc_embeddings: np.ndarray,
    encoder: SentenceTransformer,
    k: int = 2,
) -> list[Hit]:
    """Embed the query and return the ``k`` most similar documents.

    Parameters
    ----------
    query : the question, a non-empty string
    documents : the n texts that ``doc_embeddings`` were made from
    doc_embeddings : (n, dim) float32, unit rows, e.g. ``embed(documents, encoder)``
    encoder : the model that made ``doc_embeddings``
    k : how many documents to return, 1 <= k <= n

    Returns
    -------
    ``[Hit(score, document), ...]``, best first, ``score`` a Python float.

    Raises ``ValueError`` if a row of ``doc_embeddings`` is not unit length
    (within ``vectors.UNIT_TOLERANCE``): it would rank wrong without a word.
    """
    query = check_query_text(query)
    documents = check_texts(documents)
    n = len(documents)
    if np.ndim(doc_embeddings) != 2 or np.shape(doc_embeddings)[0] != n:
        raise ValueError(
            f"doc_embeddings must have one row per document: {n} documents "
            f"but doc_embeddings has shape {np.shape(doc_embeddings)}"
        )
    k = check_k(k, n)
    from .embeddings import embed  # imported on first use: it brings in sentence-transformers

    query_vec = embed([query], encoder, what="query")[0]
    _, docs = prepare_query_and_docs(query_vec, doc_embeddings)
    # search() trusts the norms of its matrix; here one more pass costs little
    # next to embedding the query, and a row shorter than 1 would rank too low.
    check_doc_norms(docs)
    indices, scores = search(query_vec, docs, k)
    return [Hit(float(s), documents[i], i) for i, s in zip(indices.tolist(), scores.tolist())]


#: The name the course's contract uses for ``retrieve``.
retrieve_with_numpy = retrieve
