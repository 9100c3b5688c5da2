"""Saying "I don't know" on any collection of documents: the threshold, calibrated without labels (notebook 11).

A fixed threshold does not carry over: a cosine score of 0.45 is a close
match in one collection and a poor one in another, because how high scores
run depends on the documents (their length, their style, how many there are).
``DEFAULT_MIN_SCORE`` was chosen on the Python-docs dev half and answers only
about four in five answerable questions of other collections.

What does carry over is the *rule*. Questions that a collection cannot answer
(off-topic ones) still reach some best score against it; ask many of them and
their best scores show where "no real match" ends for *this* collection. The
course ships generic off-topic questions (``rag_helpers/data/
off_topic_questions.json``: everyday life, sport, history, health, cooking,
money, travel, ...; no programming, no astronomy). ``calibrate`` scores the
``"calibration"`` list against the documents and places the threshold with
notebook 11's ``calibrate_min_score``: at most ``max_answered`` (5 %) of those
questions would be answered. That is the bound it states: a question that is
as far from the documents as a typical off-topic question is answered with
probability about ``max_answered``. What it cannot know is how low the
answerable questions score; that is measured, on three collections, by
``python -m benchmarks.abstention`` (both error rates, held-out off-topic
questions that calibration never saw).

A generic question that happens to be on topic for a collection (a cooking
question against a cookbook) scores high and pushes the threshold up; the
quantile (the 95th, not the maximum) lets up to 5 % of the questions be such
accidents before the threshold moves past them.
"""
from __future__ import annotations

import json
import math
import numbers
from functools import lru_cache
from importlib import resources

import numpy as np
from sentence_transformers import SentenceTransformer

from ..answers import calibrate_min_score
from .embeddings import embed
from .retrieval import search

__all__ = ["AUTO", "MAX_OFF_TOPIC_ANSWERED", "off_topic_questions", "calibrate", "check_min_score"]

#: The value of ``min_score`` that asks for calibration on the pipeline's own documents.
AUTO = "auto"
#: The share of the calibration's off-topic questions that the threshold lets through.
MAX_OFF_TOPIC_ANSWERED = 0.05
_FILE = "off_topic_questions.json"
_SPLITS = ("calibration", "held_out")


def off_topic_questions(split: str = "calibration") -> list[str]:
    """The shipped generic off-topic questions: ``"calibration"`` (159) or ``"held_out"`` (80, never calibrated on)."""
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
    return list(_load()[split])


@lru_cache(maxsize=1)
def _load() -> dict[str, tuple[str, ...]]:
    data = json.loads((resources.files("rag_helpers") / "data" / _FILE).read_text(encoding="utf-8"))
    return {split: tuple(data[split]) for split in _SPLITS}


def calibrate(doc_embeddings: np.ndarray, encoder: SentenceTransformer,
              max_answered: float = MAX_OFF_TOPIC_ANSWERED) -> float:
    """The "I don't know" threshold for these documents, from the off-topic questions' best scores.

    doc_embeddings : (n_docs, dim) float32, unit rows (the pipeline's).
    Returns a float: questions whose best document scores below it are refused.
    """
    if not 0 <= max_answered < 1:
        raise ValueError(f"max_answered must be in [0, 1), got {max_answered!r}")
    questions = embed(off_topic_questions("calibration"), encoder)  # (159, dim) float32
    _, best = search(questions, doc_embeddings, 1)                   # (159, 1) float32
    return calibrate_min_score(best[:, 0].astype(np.float64), max_answered)


def check_min_score(value: object) -> float | str | None:
    """``min_score`` as the pipeline keeps it: None (never refuse), ``"auto"``, or a float in [-1, 1].

    Cosine scores lie in [-1, 1]: a threshold outside it (or NaN, or a
    bool, which Python counts as a number) would silently refuse everything
    or nothing, so it is an error.
    """
    if value is None or value == AUTO:
        return value
    if isinstance(value, str):
        raise ValueError(f'min_score must be a number in [-1, 1], "auto" or None, got the string {value!r}')
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f'min_score must be a number in [-1, 1], "auto" or None, got {type(value).__name__}')
    value = float(value)
    if not math.isfinite(value) or not -1.0 <= value <= 1.0:
        raise ValueError(f"min_score must be a finite number in [-1, 1] (cosine scores lie there), got {value!r}")
    return value
