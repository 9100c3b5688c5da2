"""BM25: ranking documents by the words they share with the query, from scratch.

Dense retrieval compares meanings; BM25 counts words. A document scores high
when it contains the query's words, especially rare words, several times,
and is not much longer than average. For a query q and a document d:

    score(q, d) = sum over the words t of q of  idf(t) * tf(t, d) / (tf(t, d) + k1 * (1 - b + b * |d| / avgdl))

    idf(t) = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))

tf(t, d) is how often t occurs in d, |d| the number of words of d, avgdl the
mean of |d| over the N documents, df(t) the number of documents containing
t. ``k1`` (default 1.5) sets how fast repeating a word stops paying: the
term's contribution rises with tf but never exceeds idf(t). ``b`` (default
0.75) sets how much a long document is penalized (0: not at all, 1: fully).
A word repeated in the query counts once per repetition.

This is the "Lucene" variant of BM25 (Kamphuis et al., ECIR 2020), the
default of Lucene/Elasticsearch and of the ``bm25s`` library, whose scores
these match (the tests check it): its idf is never negative, even for a word
in every document, and it leaves out the classic (k1 + 1) factor of the
numerator, which multiplies every score by the same number and so changes
no ranking. k1 = 1.5 and b = 0.75 are bm25s's defaults (Lucene's k1 is 1.2).

Notebook 09 writes BM25 in plain Python, with a dictionary of postings
(``rag_helpers.evaluation.BM25``); this index is its fast path, tested to give
the same scores and the same top k. How it is computed: everything that does not depend on the query is done
once, in ``fit``: each (word, document) pair's term above is stored in a
sparse (n_words, n_docs) matrix W (CSR: row t lists the documents that
contain word t, and its term in each). A query's scores are then the sum
of the rows of W of its words: start from zeros, add one row per query word.
Only documents that contain a query word are touched. Ranking is the
course's top-k (``topk.top_k_rows``): best first, ties in index order,
exactly ``np.argsort(-scores, kind="stable")[:k]``.
"""
from __future__ import annotations

import numbers
from collections.abc import Collection, Sequence
from itertools import chain

import numpy as np
import scipy.sparse as sp

from .. import evaluation as taught
from .._infra.validation import check_k, check_query_text, check_texts
from .topk import top_k_rows

__all__ = ["ENGLISH_STOPWORDS", "tokenize", "BM25Index"]

#: Lucene's classic English stop words (also bm25s's "en" list): 33 words so
#: common that they say nothing about a document's topic.
ENGLISH_STOPWORDS: frozenset[str] = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such "
    "that the their then there these they this to was will with".split()
)


# Scores held at once by ``search``: a block of queries times every document.
_SCORE_BLOCK_ELEMENTS = 1 << 22  # 4 Mi float32 = 16 MiB


def tokenize(text: str, stopwords: Collection[str] | None = None) -> list[str]:
    """Lowercase ``text`` and split it into runs of letters and digits; drop ``stopwords``.

    >>> tokenize("Jupiter's Great Red Spot: a storm, 1.3 Earths wide!")
    ['jupiter', 's', 'great', 'red', 'spot', 'a', 'storm', '1', '3', 'earths', 'wide']
    >>> tokenize("The largest planet", stopwords=ENGLISH_STOPWORDS)
    ['largest', 'planet']

    No stemming: "planet" and "planets" are different words to BM25 here.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    tokens = taught.tokenize(text)  # runs of letters and digits (any script), lowercased
    if stopwords:
        tokens = [t for t in tokens if t not in stopwords]
    return tokens


class BM25Index:
    """A BM25 index over a list of documents: ``fit`` once, then score and search.

    >>> index = BM25Index().fit(["Jupiter is the largest planet.", "Venus is the hottest planet."])
    >>> index.search("largest planet", k=1)
    (array([0]), array([0.3501...], dtype=float32))

    Parameters
    ----------
    k1 : float >= 0, term-frequency saturation (see the module docstring).
    b : float in [0, 1], length normalization.
    stopwords : words to drop from documents and queries, e.g.
        ``ENGLISH_STOPWORDS``; None (the default) keeps every word.

    Attributes, after ``fit``
    -------------------------
    vocabulary : dict word -> row of ``weights``, in order of first appearance.
    doc_lengths : (n_docs,) int64, |d| in tokens.
    avg_doc_length : float, avgdl.
    idf : (n_words,) float32, idf(t).
    weights : scipy.sparse CSR (n_words, n_docs) float32, row t holds word t's
        term of the score in each document that contains it.
    """

    def __init__(self, k1: float = 1.5, b: float = 0.75, stopwords: Collection[str] | None = None) -> None:
        if isinstance(k1, bool) or not isinstance(k1, numbers.Real) or not 0 <= k1 < float("inf"):
            raise ValueError(f"k1 must be a finite number >= 0, got {k1!r}")
        if isinstance(b, bool) or not isinstance(b, numbers.Real) or not 0 <= b <= 1:
            raise ValueError(f"b must be a number in [0, 1], got {b!r}")
        if isinstance(stopwords, str):
            raise TypeError("stopwords must be a collection of words, not a single string")
        self.k1 = float(k1)
        self.b = float(b)
        self.stopwords = frozenset(w.lower() for w in stopwords) if stopwords else frozenset()
        self.vocabulary: dict[str, int] = {}
        self.weights: sp.csr_matrix | None = None

    def __repr__(self) -> str:
        fitted = f", {self.n_docs} documents, {len(self.vocabulary)} words" if self.weights is not None else ""
        return f"BM25Index(k1={self.k1}, b={self.b}{fitted})"

    @property
    def n_docs(self) -> int:
        return self._fitted().shape[1]

    def tokenize(self, text: str) -> list[str]:
        """``tokenize(text, self.stopwords)``: the words this index sees in ``text``."""
        return tokenize(text, self.stopwords)

    def fit(self, documents: Sequence[str]) -> BM25Index:
        """Index ``documents`` (a list of non-blank strings); returns ``self``.

        A document whose every token is a stop word is kept: it scores 0
        for every query. At least one document must have a token.
        """
        documents = check_texts(documents)
        token_lists = [self.tokenize(doc) for doc in documents]
        n_docs = len(documents)

        # Each token becomes the row of its word: the vocabulary grows as new words appear.
        vocabulary: dict[str, int] = {}
        word_ids = np.fromiter(
            (vocabulary.setdefault(t, len(vocabulary)) for t in chain.from_iterable(token_lists)), dtype=np.int64)
        doc_lengths = np.array([len(tokens) for tokens in token_lists], dtype=np.int64)
        if not vocabulary:
            raise ValueError("no document has a single token (after stop words): there is nothing to index")
        doc_ids = np.repeat(np.arange(n_docs), doc_lengths)

        # Term frequencies: a (n_words, n_docs) matrix of counts. Building a
        # sparse matrix from (row, column) pairs adds up repeated pairs.
        tf = sp.csr_matrix((np.ones(word_ids.size, dtype=np.float64), (word_ids, doc_ids)),
                           shape=(len(vocabulary), n_docs))
        tf.sum_duplicates()

        # df(t): the number of documents containing t, i.e. of stored entries in row t.
        doc_freq = np.diff(tf.indptr)
        idf = np.log(1 + (n_docs - doc_freq + 0.5) / (doc_freq + 0.5)).astype(np.float32)
        avg_doc_length = float(doc_lengths.mean())

        # The term of each stored (t, d) pair: idf(t) * tf / (tf + k1 * (1 - b + b * |d| / avgdl)).
        # (idf rounded to float32 first, the rest in float64 in this order, and
        # query words added in query order: as bm25s does, so that the scores
        # come out the same to the last bit.)
        length_norm = self.k1 * ((1 - self.b) + self.b * doc_lengths / avg_doc_length)  # (n_docs,)
        rows = np.repeat(np.arange(len(vocabulary)), doc_freq)
        counts = tf.data
        terms = idf[rows].astype(np.float64) * (counts / (length_norm[tf.indices] + counts))

        self.vocabulary, self.doc_lengths, self.avg_doc_length, self.idf = vocabulary, doc_lengths, avg_doc_length, idf
        self.weights = sp.csr_matrix((terms.astype(np.float32), tf.indices, tf.indptr), shape=tf.shape)
        return self

    def query_word_ids(self, queries: Sequence[str]) -> list[list[int]]:
        """Each query's words as rows of ``weights``, in query order; words not in the index are dropped.

        Raises ``ValueError`` for a query with no token at all (blank, only
        punctuation or stop words): it would score every document 0.
        """
        self._fitted()
        word_ids = []
        for i, query in enumerate(queries):
            tokens = self.tokenize(check_query_text(query, name=f"queries[{i}]"))
            if not tokens:
                raise ValueError(f"queries[{i}] ({query!r:.60}) has no word left after tokenization"
                                 + (" and stop words" if self.stopwords else ""))
            word_ids.append([self.vocabulary[t] for t in tokens if t in self.vocabulary])
        return word_ids

    def scores(self, queries: str | Sequence[str]) -> np.ndarray:
        """BM25 scores of every document: (n_docs,) float32 for one query, (q, n_docs) for a list.

        A query none of whose words is in the index scores 0 everywhere.
        """
        single, queries = _as_query_list(queries)
        word_ids = self.query_word_ids(queries)
        scores = np.zeros((len(queries), self.n_docs), dtype=np.float32)
        for row, words in zip(scores, word_ids):
            self._add_word_rows(row, words)
        return scores[0] if single else scores

    def search(self, queries: str | Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k best documents for each query: ``(indices, scores)``.

        (k,) int64 and (k,) float32 for one query (a string), (q, k) each
        for a list of queries. Best first, ties in index order: each row is
        exactly ``np.argsort(-scores, kind="stable")[:k]`` of ``scores``.
        Scores of 0 mean no query word occurs in the document: when fewer
        than k documents match, the rest of the list is index order.
        """
        single, queries = _as_query_list(queries)
        k = check_k(k, self.n_docs)
        word_ids = self.query_word_ids(queries)
        # Blocks of queries, so the dense (block, n_docs) scores stay small.
        block = max(1, min(len(queries), _SCORE_BLOCK_ELEMENTS // self.n_docs))
        scores = np.empty((block, self.n_docs), dtype=np.float32)
        indices = np.empty((len(queries), k), dtype=np.int64)
        values = np.empty((len(queries), k), dtype=np.float32)
        for start in range(0, len(queries), block):
            part = word_ids[start : start + block]
            rows = scores[: len(part)]
            rows.fill(0)
            for row, words in zip(rows, part):
                self._add_word_rows(row, words)
            indices[start : start + len(part)], values[start : start + len(part)] = top_k_rows(rows, k)
        return (indices[0], values[0]) if single else (indices, values)

    def _add_word_rows(self, scores: np.ndarray, word_ids: list[int]) -> None:
        """Add row t of ``weights`` to ``scores`` (n_docs,) for each word t of one query, in order."""
        w = self.weights
        for t in word_ids:
            start, end = w.indptr[t], w.indptr[t + 1]
            # A row lists each document once, so plain fancy-index += is exact (no np.add.at needed).
            scores[w.indices[start:end]] += w.data[start:end]

    def _fitted(self) -> sp.csr_matrix:
        if self.weights is None:
            raise RuntimeError("this BM25Index is empty: call .fit(documents) first")
        return self.weights


def _as_query_list(queries: str | Sequence[str]) -> tuple[bool, list[str]]:
    """(True, [query]) for one query string, (False, queries) for a list."""
    if isinstance(queries, str):
        return True, [queries]
    if isinstance(queries, np.ndarray):
        queries = queries.tolist()
    if not isinstance(queries, Sequence) or isinstance(queries, bytes):
        raise TypeError(f"queries must be a string or a list of strings, got {type(queries).__name__}")
    if len(queries) == 0:
        raise ValueError("queries is empty: give at least one query")
    return False, list(queries)
