"""Dense, BM25 and hybrid retrieval over the same chunks, judged by the same labels (notebook 09).

    retrievers = ChunkRetrievers.build(load_python_docs(), encoder)   # chunks, embeddings, BM25 index
    questions = load_labelled_questions("dev")
    scores = retrievers.score([q.question for q in questions])         # every chunk, both ways, once
    results = compare(scores, retrievers.relevance(questions))         # method -> EvaluationResult
    print(comparison_table(results))

The four methods (``METHODS``):

* ``dense``: cosine similarity of all-MiniLM-L6-v2 embeddings (notebooks 01-04);
* ``bm25``: ``bm25.BM25Index`` over the same chunks' words;
* ``hybrid RRF``: reciprocal rank fusion of the dense and BM25 top ``depth`` lists;
* ``hybrid weighted``: ``weight`` * dense + (1 - ``weight``) * BM25, each min-max normalized per query.

Everything is computed from two (q, n_chunks) score matrices, so sweeping k,
the fusion weight or the depth costs no new embedding.
"""
from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from .._infra.validation import check_k, check_positive_int, check_texts
from .bm25 import BM25Index
from .chunking import DEFAULT_CHUNK_TOKENS, DEFAULT_OVERLAP, Chunk
from .corpus import Span, relevance_matrix
from .documents import Document
from .embeddings import embed
from .evaluation import EvaluationResult, evaluate
from .hybrid import reciprocal_rank_fusion, weighted_fusion
from .pipeline import RAGPipeline
from .topk import top_k_rows

__all__ = [
    "METHODS",
    "FUSION_DEPTH",
    "FUSION_WEIGHTS",
    "ChunkRetrievers",
    "QueryScores",
    "compare",
    "comparison_table",
    "sweep_weights",
    "choose_weight",
]

METHODS = ("dense", "bm25", "hybrid RRF", "hybrid weighted")
#: How many of each retriever's best chunks reciprocal rank fusion looks at.
FUSION_DEPTH = 100
#: The dense weights ``sweep_weights`` tries: 0 (BM25 alone), 0.1, ..., 1 (dense alone).
FUSION_WEIGHTS = tuple(round(w / 10, 1) for w in range(11))


@dataclass(frozen=True)
class QueryScores:
    """Every chunk's score for every query, both ways; ``rank`` turns them into rankings.

    dense : (q, n) float32, cosine similarities.
    bm25 : (q, n) float32, BM25 scores (0 where no query word occurs).
    """

    dense: np.ndarray
    bm25: np.ndarray

    def rank(self, method: str, k: int, *, weight: float = 0.5, depth: int = FUSION_DEPTH) -> np.ndarray:
        """(q, k) int64: the k best chunks of each query by ``method`` (one of ``METHODS``), best first.

        ``weight``: the dense share of ``hybrid weighted``. ``depth``: how
        many of each retriever's best chunks ``hybrid RRF`` fuses (raised to
        k if smaller, cut to the number of chunks if larger).
        Ties go to the lower chunk index, as everywhere in the course.
        """
        n = self.dense.shape[1]
        k = check_k(k, n)
        if method == "dense":
            return top_k_rows(self.dense, k)[0]
        if method == "bm25":
            return top_k_rows(self.bm25, k)[0]
        if method == "hybrid RRF":
            depth = min(max(check_positive_int(depth, "depth"), k), n)  # at least k, at most every chunk
            return reciprocal_rank_fusion(top_k_rows(self.dense, depth)[0], top_k_rows(self.bm25, depth)[0], k=k)[0]
        if method == "hybrid weighted":
            return weighted_fusion(self.dense, self.bm25, k, weight=weight)[0]
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")


@dataclass(frozen=True)
class ChunkRetrievers:
    """One set of chunks, with what dense and BM25 retrieval need: their embeddings and a BM25 index.

    chunks : n ``Chunk``s, in document order.
    doc_embeddings : (n, 384) float32, unit rows.
    encoder : the model that embedded them (queries must use the same).
    bm25 : a ``BM25Index`` fitted on the chunks' texts.
    """

    chunks: list[Chunk]
    doc_embeddings: np.ndarray
    encoder: object
    bm25: BM25Index

    @classmethod
    def build(
        cls,
        documents: Sequence[Document],
        encoder,
        chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
        overlap: int = DEFAULT_OVERLAP,
        *,
        cache_embeddings: bool = True,
        stopwords: Collection[str] | None = None,
    ) -> ChunkRetrievers:
        """The chunks and embeddings of ``RAGPipeline.from_files(documents, ...)``, and a BM25 index of their words.

        ``cache_embeddings=True`` keeps the embeddings in the user cache:
        the same file ``RAGPipeline(..., cache_embeddings=True)`` uses for the
        same chunks. ``stopwords`` go to ``BM25Index`` (none by
        default: on the dev half, Lucene's English stop words changed BM25's
        recall@5 and MRR@10 by less than 0.005, slightly down).
        """
        # The pipeline is the assembler: it cuts, embeds (from the cache) and keeps each hit's Chunk.
        pipe = RAGPipeline.from_files(list(documents), chunk_tokens=chunk_tokens, overlap=overlap, k=1,
                                      encoder=encoder, cache_embeddings=cache_embeddings)
        texts = [c.text for c in pipe.sources]
        return cls(pipe.sources, pipe.doc_embeddings, encoder, BM25Index(stopwords=stopwords).fit(texts))

    def score(self, queries: Sequence[str]) -> QueryScores:
        """Both score matrices for ``queries`` (the queries are embedded once, in one batch)."""
        queries = check_texts(queries, name="queries")
        query_vecs = embed(queries, self.encoder)  # (q, 384) float32
        return QueryScores(query_vecs @ self.doc_embeddings.T, self.bm25.scores(queries))

    def relevance(self, questions: Sequence[Span]) -> list[set[int]]:
        """For each labelled question, the indices of the chunks that overlap its answer (never empty)."""
        matrix = relevance_matrix(self.chunks, questions)  # (q, n) bool
        missing = np.flatnonzero(~matrix.any(axis=1))
        if missing.size:
            raise ValueError(f"questions[{missing[0]}] has no chunk overlapping its answer: "
                             "were the chunks cut from other documents?")
        return [set(np.flatnonzero(row).tolist()) for row in matrix]


def compare(
    scores: QueryScores,
    relevance: Sequence[set[int]],
    ks: Sequence[int] = (1, 3, 5, 10),
    *,
    methods: Sequence[str] = METHODS,
    weight: float = 0.5,
    depth: int = FUSION_DEPTH,
) -> dict[str, EvaluationResult]:
    """``evaluate`` each method's rankings: method -> hit rate, recall, MRR and nDCG at each k."""
    deepest = max(ks)
    return {m: evaluate(scores.rank(m, deepest, weight=weight, depth=depth), relevance, ks) for m in methods}


def sweep_weights(scores: QueryScores, relevance: Sequence[set[int]], ks: Sequence[int] = (1, 3, 5, 10),
                  weights: Sequence[float] = FUSION_WEIGHTS) -> dict[float, EvaluationResult]:
    """``hybrid weighted`` evaluated at each dense weight: weight -> EvaluationResult."""
    return {float(w): compare(scores, relevance, ks, methods=["hybrid weighted"], weight=w)["hybrid weighted"]
            for w in weights}


def choose_weight(by_weight: dict[float, EvaluationResult]) -> float:
    """The weight with the highest recall@5, then the highest MRR@10 (then the lowest weight).

    Recall@5 first: it says how much of the answer reaches a prompt of about
    five chunks, which is what the generator can use; MRR@10 breaks ties.
    Choose on the dev half, never on the test half.
    """
    return max(sorted(by_weight), key=lambda w: (by_weight[w]["recall@5"], by_weight[w]["mrr@10"], -w))


def comparison_table(results: dict[str, EvaluationResult],
                     columns: Sequence[str] = ("hit_rate@1", "recall@5", "recall@10", "mrr@10", "ndcg@10"),
                     digits: int = 3) -> str:
    """A markdown table: one row per method, one column per metric (bold: the best of each column)."""
    best = {c: max(r[c] for r in results.values()) for c in columns}
    lines = ["| method | " + " | ".join(columns) + " |", "|---|" + "|".join("---:" for _ in columns) + "|"]
    for method, result in results.items():
        cells = [f"**{result[c]:.{digits}f}**" if result[c] == best[c] else f"{result[c]:.{digits}f}"
                 for c in columns]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
