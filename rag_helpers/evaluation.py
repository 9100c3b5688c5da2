# Generated from notebooks/09_evaluation.ipynb by tools/nbexport.py: edit the notebook, not this file.
# Each block below is one `#| export` cell of the notebook, verbatim, in order.

"""Evaluation (notebook 09): ranking metrics, BM25, hybrid fusion and the "I don't know" threshold.

Written one question at a time, as notebook 09 teaches it: a ranking is a list
of chunk ids, best first, and the labels are the set of relevant ids. The
checked and vectorized versions behind ``rag_helpers`` (``engine/metrics.py``,
``engine/bm25.py``, ``engine/hybrid.py``, ``engine/abstention.py``) are tested
to give these functions' results.
"""
import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from importlib import resources

import numpy as np

from rag_helpers.documents import is_relevant   # 08: same page, at least one shared character


def relevant_chunks(chunks: list, question) -> set[int]:
    """Indices of the chunks that hold part of the question's labelled answer (``is_relevant``).

    chunks : Chunks (``.source``, ``.start``, ``.end``); question : a LabelledQuestion (the same three).
    """
    return {i for i, chunk in enumerate(chunks) if is_relevant(chunk, question)}


def hit_at_k(ranking: list, relevant: set, k: int) -> float:
    """1.0 if one of the first k ids is relevant, else 0.0."""
    return float(any(doc in relevant for doc in ranking[:k]))


def recall_at_k(ranking: list, relevant: set, k: int) -> float:
    """The fraction of the relevant ids that are among the first k."""
    return sum(doc in relevant for doc in ranking[:k]) / len(relevant)


def reciprocal_rank(ranking: list, relevant: set, k: int) -> float:
    """1 / the rank of the first relevant id among the first k (rank 1 is the best); 0.0 if none is."""
    for rank, doc in enumerate(ranking[:k], start=1):
        if doc in relevant:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranking: list, relevant: set, k: int) -> float:
    """DCG@k / IDCG@k, in [0, 1]: each relevant id among the first k is worth 1 / log2(rank + 1).

    IDCG@k is the DCG@k of the best possible ranking: min(k, |relevant|) relevant ids first.
    """
    dcg = sum(1 / math.log2(rank + 1) for rank, doc in enumerate(ranking[:k], start=1) if doc in relevant)
    ideal = sum(1 / math.log2(rank + 1) for rank in range(1, min(k, len(relevant)) + 1))
    return dcg / ideal


METRICS = {"hit_rate": hit_at_k, "recall": recall_at_k, "mrr": reciprocal_rank, "ndcg": ndcg_at_k}


def mean_metrics(rankings: list[list], relevant: list[set], ks: tuple = (1, 3, 5, 10)) -> dict[str, float]:
    """Every metric at every k, averaged over the questions: {"hit_rate@1": ..., ..., "ndcg@10": ...}."""
    return {f"{name}@{k}": float(np.mean([metric(r, rel, k) for r, rel in zip(rankings, relevant)]))
            for name, metric in METRICS.items() for k in ks}


def tokenize(text: str) -> list[str]:
    """Lowercase runs of letters and digits: "Py_BuildValue()?" -> ["py", "buildvalue"]."""
    return re.findall(r"[^\W_]+", text.lower())


class BM25:
    """BM25 scores of a fixed list of texts (the Lucene variant, without the (k1 + 1) factor).

    score(q, d) = sum over the words t of q of idf(t) * tf(t, d) / (tf(t, d) + k1 * (1 - b + b * |d| / avgdl))
    idf(t) = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))
    """

    def __init__(self, texts: list[str], k1: float = 1.5, b: float = 0.75):
        counts = [Counter(tokenize(text)) for text in texts]       # one word -> tf(word, d) per text
        lengths = np.array([sum(c.values()) for c in counts])       # (N,) |d| in words
        # The part of the denominator that depends on d only, computed once: (N,) float64.
        self.length_norm = (k1 * (1 - b + b * lengths / lengths.mean())).tolist()
        self.postings: dict[str, dict[int, int]] = {}               # word -> {d: tf(word, d)}
        for d, c in enumerate(counts):
            for word, tf in c.items():
                self.postings.setdefault(word, {})[d] = tf
        self.n_docs = len(texts)

    def idf(self, word: str) -> float:
        df = len(self.postings.get(word, {}))                       # how many texts contain the word
        return math.log(1 + (self.n_docs - df + 0.5) / (df + 0.5))

    def scores(self, question: str) -> np.ndarray:
        """(N,) float64: the BM25 score of every text; 0 where no word of the question occurs."""
        scores = np.zeros(self.n_docs)
        for word in tokenize(question):                             # a word twice in the question counts twice
            idf = self.idf(word)
            for d, tf in self.postings.get(word, {}).items():
                scores[d] += idf * tf / (tf + self.length_norm[d])
        return scores


def rrf(rankings: list[list], c: int = 60) -> list:
    """Reciprocal rank fusion: every id of the rankings by sum of 1 / (c + rank), best first.

    An id missing from a ranking gets nothing from it; equal sums go to the lower id.
    """
    fused = Counter()
    for ranking in rankings:
        for rank, doc in enumerate(ranking, start=1):
            fused[doc] += 1 / (c + rank)
    return sorted(fused, key=lambda doc: (-fused[doc], doc))


def min_max(scores: np.ndarray) -> np.ndarray:
    """(n,) scores -> (n,) float64 in [0, 1]: (s - min) / (max - min); all equal -> all 0 (no preference)."""
    s = np.asarray(scores, dtype=np.float64)   # float64, so that rounding makes no ties
    spread = s.max() - s.min()
    return (s - s.min()) / spread if spread > 0 else np.zeros(len(s))


def weighted_fusion(dense: np.ndarray, bm25: np.ndarray, weight: float) -> np.ndarray:
    """(n,) fused scores of the same n chunks: weight * min_max(dense) + (1 - weight) * min_max(bm25)."""
    return weight * min_max(dense) + (1 - weight) * min_max(bm25)


@dataclass(frozen=True)
class UnanswerableQuestion:
    """A question the pages do not answer: ``kind`` "python" (not covered) or "off-topic"; ``split`` "dev" or "test"."""

    question: str
    kind: str
    split: str


def load_unanswerable_questions(split: str = "all") -> list[UnanswerableQuestion]:
    """The unanswerable questions shipped with the course: of one split ("dev", "test") or of both ("all")."""
    data = json.loads((resources.files("rag_helpers") / "data" / "unanswerable_questions.json").read_text("utf-8"))
    return [UnanswerableQuestion(r["question"], r["kind"], r["split"])
            for r in data["questions"] if split in ("all", r["split"])]


def tradeoff(best_answerable: np.ndarray, best_unanswerable: np.ndarray,
             thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both error rates at each of m thresholds: ((m,) wrongly refused, (m,) wrongly answered), fractions.

    best_answerable (a,) and best_unanswerable (u,): each question's best score. A question is
    refused when its best score is strictly below t, as RAGPipeline(..., min_score=t) does.
    """
    t = np.asarray(thresholds, dtype=np.float64)[:, None]                 # (m, 1) against (a,) and (u,)
    wrongly_refused = (np.asarray(best_answerable) < t).mean(axis=1)      # (m,)
    wrongly_answered = (np.asarray(best_unanswerable) >= t).mean(axis=1)  # (m,)
    return wrongly_refused, wrongly_answered


def candidate_thresholds(best_answerable: np.ndarray, best_unanswerable: np.ndarray,
                         beyond: float = 0.05) -> np.ndarray:
    """(m,) ascending: halfway between consecutive distinct scores, and one below and one above them all.

    The error rates change only where t crosses a score, so these are every trade-off there is,
    each as far as it can be from the scores around it (a last-digit change in a score cannot
    move a question across it).
    """
    values = np.unique(np.concatenate([best_answerable, best_unanswerable]).astype(np.float64))
    edges = np.concatenate([[values[0] - 2 * beyond], values, [values[-1] + 2 * beyond]])
    return (edges[:-1] + edges[1:]) / 2


def choose_threshold(best_answerable: np.ndarray, best_unanswerable: np.ndarray) -> float:
    """The candidate with the smallest wrongly refused + wrongly answered (the lowest among ties)."""
    t = candidate_thresholds(best_answerable, best_unanswerable)
    refused, answered = tradeoff(best_answerable, best_unanswerable, t)
    return float(t[np.argmin(refused + answered)])   # argmin: the first, so the lowest, of equal sums
