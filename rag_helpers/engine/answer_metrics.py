"""Answer metrics with checked arguments, and a batched path for many answers at once.

The taught code is ``rag_helpers/answers.py`` (notebook 11): SQuAD's exact match
and token F1, token recall, ROUGE-L, sentence splitting, groundedness (context
precision and sentence support), citation checks, the extractive baseline and
``calibrate_min_score``. Every function here checks its arguments (a clear
``TypeError``/``ValueError`` naming the argument, raised before any work) and
then calls the taught function, so the numbers are the notebook's.

The one fast path: ``sentence_supports`` scores many answers against their
documents with one embedding call for all the distinct sentences (the taught
``sentence_support`` embeds per answer). ``tests/test_answer_metrics.py``
checks that it gives the taught function's values. ``groundedness`` here
uses it.

    python -m rag_helpers.engine.answer_metrics    # recompute SUPPORT_THRESHOLD on the dev half
"""
from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Sequence

import numpy as np

from .. import answers as taught
from ..answers import SUPPORT_THRESHOLD, strip_citations
from .embeddings import embed

__all__ = [
    "SUPPORT_THRESHOLD",
    "normalize_answer",
    "answer_tokens",
    "exact_match",
    "token_f1",
    "token_recall",
    "rouge_l",
    "split_sentences",
    "context_precision",
    "sentence_support",
    "sentence_supports",
    "extractive_answers",
    "groundedness",
    "citations",
    "citation_accuracy",
    "extractive_answer",
    "calibrate_min_score",
    "measure_support_threshold",
]


# ---------------------------------------------------------------- checks

def _text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__} {_preview(value)}")
    return value


def _texts(value: object, name: str) -> list[str]:
    """A list of strings (an empty list is allowed: no context)."""
    if isinstance(value, str):
        raise TypeError(f"{name} must be a list of strings, got one str: wrap it in a list, [{_preview(value)}]")
    if not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a list of strings, got {type(value).__name__}")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise TypeError(f"{name}[{i}] must be a str, got {type(item).__name__} {_preview(item)}")
    return list(value)


def _encoder(encoder: object) -> object:
    if encoder is None:
        raise ValueError("encoder is None: pass the sentence-embedding model, e.g. rh.load_encoder()")
    if not callable(getattr(encoder, "encode", None)):
        raise TypeError(f"encoder must be a sentence-embedding model with .encode (rh.load_encoder()), "
                        f"got {type(encoder).__name__}")
    return encoder


def _threshold(value: object, name: str = "threshold") -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {type(value).__name__} {value!r}")
    return float(value)


def _preview(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------- against a gold answer

def normalize_answer(text: str) -> str:
    """SQuAD's normalisation (lower-case, no punctuation, no articles, single spaces); see ``answers``."""
    return taught.normalize_answer(_text(text, "text"))


def answer_tokens(text: str) -> list[str]:
    """``normalize_answer(text).split()``."""
    return taught.answer_tokens(_text(text, "text"))


def exact_match(prediction: str, gold: str) -> float:
    """1.0 if the normalised texts are equal, else 0.0."""
    return taught.exact_match(_text(prediction, "prediction"), _text(gold, "gold"))


def token_f1(prediction: str, gold: str) -> float:
    """SQuAD's bag-of-words F1 in [0, 1] (both empty -> 1.0, one empty -> 0.0)."""
    return taught.token_f1(_text(prediction, "prediction"), _text(gold, "gold"))


def token_recall(prediction: str, gold: str) -> float:
    """The share of the gold answer's tokens (with repeats) that the prediction has, in [0, 1]."""
    return taught.token_recall(_text(prediction, "prediction"), _text(gold, "gold"))


def rouge_l(prediction: str, gold: str) -> tuple[float, float, float]:
    """ROUGE-L (precision, recall, F1), as ``rouge_score``'s default ``rougeL`` (no stemming)."""
    return taught.rouge_l(_text(prediction, "prediction"), _text(gold, "gold"))


# ---------------------------------------------------------------- against the context

def split_sentences(text: str) -> list[str]:
    """The sentences of a text (the regular expression of ``answers.split_sentences``)."""
    return taught.split_sentences(_text(text, "text"))


def context_precision(answer: str, context: str | Sequence[str]) -> float:
    """The share of the answer's tokens found among the context's (one string or a list); empty answer 1.0."""
    answer = _text(answer, "answer")
    context = context if isinstance(context, str) else _texts(context, "context")
    return taught.context_precision(answer, context)


def sentence_support(answer: str, documents: Sequence[str], encoder: object) -> np.ndarray:
    """(n_sentences,) float32: each answer sentence's best cosine similarity to a sentence of the documents."""
    return sentence_supports([_text(answer, "answer")], [_texts(documents, "documents")], encoder)[0]


def sentence_supports(
    answers: Sequence[str], documents: Sequence[Sequence[str]], encoder: object,
) -> list[np.ndarray]:
    """``sentence_support`` for many answers, each against its own documents, with one embedding call.

    answers : n strings; documents : n lists of strings (answer i is scored against
    documents[i]). Every distinct sentence (of the answers and of the documents) is embedded
    once, with the package's ``embed`` (ONNX Runtime for long lists when installed).
    Returns a list of n (n_sentences_i,) float32 arrays, as the taught function gives.
    """
    answers = _texts(answers, "answers")
    if isinstance(documents, str) or not isinstance(documents, Sequence):
        raise TypeError(f"documents must be a list of lists of strings (one per answer), got {type(documents).__name__}")
    if len(documents) != len(answers):
        raise ValueError(f"documents has {len(documents)} entries for {len(answers)} answers")
    documents = [_texts(docs, f"documents[{i}]") for i, docs in enumerate(documents)]
    encoder = _encoder(encoder)
    # The same sentences as the taught function: markers stripped, empty pieces dropped.
    answer_sentences = [[s for s in (strip_citations(x) for x in taught.split_sentences(a)) if s] for a in answers]
    context_sentences = [[s for doc in docs for s in taught.split_sentences(doc)] for docs in documents]
    distinct = sorted({s for group in (*answer_sentences, *context_sentences) for s in group})
    row = {s: i for i, s in enumerate(distinct)}
    vectors = embed(distinct, encoder) if distinct else np.zeros((0, 0), dtype=np.float32)
    out = []
    for mine, theirs in zip(answer_sentences, context_sentences):
        if not mine:
            out.append(np.zeros(0, dtype=np.float32))
        elif not theirs:
            out.append(np.zeros(len(mine), dtype=np.float32))
        else:
            a = vectors[[row[s] for s in mine]]        # (n_sentences, dim)
            c = vectors[[row[s] for s in theirs]]      # (n_context, dim)
            out.append((a @ c.T).max(axis=1).astype(np.float32))
    return out


def groundedness(answer: str, documents: Sequence[str], encoder: object,
                 threshold: float = SUPPORT_THRESHOLD) -> float:
    """The share of the answer's sentences with support >= threshold; an answer without sentences 1.0."""
    threshold = _threshold(threshold)
    support = sentence_support(answer, documents, encoder)
    return float(np.mean(support >= threshold)) if support.size else 1.0


def citations(answer: str) -> list[int]:
    """Every ``[n]`` of the answer, in order."""
    return taught.citations(_text(answer, "answer"))


def citation_accuracy(answer: str, documents: Sequence[str], encoder: object,
                      threshold: float = SUPPORT_THRESHOLD) -> tuple[float, float]:
    """(valid, supported) shares of the citations, see ``answers.citation_accuracy``; no citation: (0.0, 0.0)."""
    answer, documents = _text(answer, "answer"), _texts(documents, "documents")
    return taught.citation_accuracy(answer, documents, _encoder(encoder), _threshold(threshold))


def _n_sentences(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"n_sentences must be a positive integer, got {type(value).__name__} {value!r}")
    return int(value)


def extractive_answer(question: str, documents: Sequence[str], encoder: object, n_sentences: int = 2) -> str:
    """The documents' ``n_sentences`` sentences closest to the question, best first, joined by a space."""
    question, documents = _text(question, "question"), _texts(documents, "documents")
    n_sentences = _n_sentences(n_sentences)
    if not question.strip():
        raise ValueError("question is empty")
    return taught.extractive_answer(question, documents, _encoder(encoder), n_sentences)


def extractive_answers(questions: Sequence[str], documents: Sequence[Sequence[str]], encoder: object,
                       n_sentences: int = 2) -> list[str]:
    """``extractive_answer`` for many questions, each over its own documents, with one embedding call.

    questions : n strings; documents : n lists of strings. Every distinct sentence and question is
    embedded once; each answer ranks its own sentences as the taught function does (stable order:
    ties go to the earlier sentence). Returns n strings.
    """
    questions = _texts(questions, "questions")
    if isinstance(documents, str) or not isinstance(documents, Sequence) or len(documents) != len(questions):
        raise ValueError("documents must be one list of strings per question")
    documents = [_texts(docs, f"documents[{i}]") for i, docs in enumerate(documents)]
    n_sentences = _n_sentences(n_sentences)
    for i, question in enumerate(questions):
        if not question.strip():
            raise ValueError(f"questions[{i}] is empty")
    if not questions:
        return []
    sentences = [[s for doc in docs for s in taught.split_sentences(doc)] for docs in documents]
    distinct = sorted({*questions, *(s for group in sentences for s in group)})
    row = {s: i for i, s in enumerate(distinct)}
    vectors = embed(distinct, _encoder(encoder))                       # (n_distinct, dim)
    out = []
    for question, mine in zip(questions, sentences):
        if not mine:
            out.append("")
            continue
        scores = vectors[[row[s] for s in mine]] @ vectors[row[question]]
        best = np.argsort(-scores, kind="stable")[:n_sentences]
        out.append(" ".join(mine[i] for i in best))
    return out


# ---------------------------------------------------------------- "I don't know"

def calibrate_min_score(off_topic_scores: Sequence[float] | np.ndarray, max_answered: float = 0.05) -> float:
    """The threshold under which at most ``max_answered`` of the off-topic questions are answered.

    off_topic_scores : 1-D, the best retrieval score of each off-topic question (at least one,
    finite). max_answered : in [0, 1]. The rule is ``answers.calibrate_min_score``'s.
    """
    scores = np.asarray(off_topic_scores, dtype=np.float64) if not isinstance(off_topic_scores, str) else None
    if scores is None or scores.ndim != 1:
        raise ValueError("off_topic_scores must be a 1-D list or array of numbers "
                         f"(got {'a str' if scores is None else f'shape {scores.shape}'})")
    if scores.size == 0:
        raise ValueError("off_topic_scores is empty: calibrating needs at least one off-topic question's score")
    if not np.isfinite(scores).all():
        raise ValueError(f"off_topic_scores[{int(np.flatnonzero(~np.isfinite(scores))[0])}] is not finite")
    max_answered = _threshold(max_answered, "max_answered")
    if not 0 <= max_answered <= 1:
        raise ValueError(f"max_answered must be a share between 0 and 1, got {max_answered}")
    return float(taught.calibrate_min_score(scores.tolist(), max_answered))


# ---------------------------------------------------------------- where SUPPORT_THRESHOLD comes from

def measure_support_threshold(encoder: object = None, split: str = "dev") -> tuple[float, float, float]:
    """The rule of notebook 11 on a split of the labelled questions: (threshold, missed, falsely supported).

    ``support_separation`` on the split's gold answers, then ``equal_error_threshold``.
    SUPPORT_THRESHOLD is this on "dev"; "test" tells how the choice carries over.
    """
    from .corpus import answer_text, load_labelled_questions
    from .embeddings import load_encoder

    encoder = load_encoder() if encoder is None else _encoder(encoder)
    supported, unsupported = taught.support_separation(load_labelled_questions(split), answer_text, encoder)
    return taught.equal_error_threshold(supported, unsupported)


def main(argv: Sequence[str] = ()) -> int:
    for split in ("dev", "test"):
        t, missed, false_support = measure_support_threshold(None, split)
        print(f"{split}: equal-error threshold {t:.2f} (missed {missed:.1%}, falsely supported {false_support:.1%})")
    print(f"SUPPORT_THRESHOLD = {SUPPORT_THRESHOLD} (chosen on dev)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
