"""Knowing when to say "I don't know": choosing the score threshold (notebook 09).

The rule and the trade-off curve are taught in notebook 09 and live in
``rag_helpers.evaluation`` (``tradeoff``, ``candidate_thresholds``,
``choose_threshold``); the functions here check their arguments, then call
them, and add the capped rule (``max_wrongly_refused``).

``RAGPipeline(documents, min_score=t)`` answers ``ABSTAIN_ANSWER`` ("I don't
know ...") without asking the model when the best retrieved document scores
below ``t``. Which ``t``? Each choice makes two kinds of mistakes:

    wrongly refused(t)  = the fraction of answerable questions whose best score is < t
    wrongly answered(t) = the fraction of unanswerable questions whose best score is >= t

Raise ``t`` and the first grows while the second shrinks: a trade-off,
measured on labelled questions (``threshold_tradeoff``) and settled by a
rule written down before looking at the test half (``choose_threshold``):

* by default, the smallest sum of the two error rates (equivalently, the
  largest Youden's J = 1 - sum): both mistakes count alike, whatever the
  number of questions of each kind;
* or, with ``max_wrongly_refused=c``, the fewest wrongly answered among the
  thresholds that refuse at most a fraction ``c`` of the answerable questions.

The error rates only change where a threshold crosses a question's score,
so the candidates (``candidate_thresholds``) are the points halfway between
consecutive scores: each way of splitting the questions once, placed as far
as it can be from the scores on either side (a last-bit difference in a
score, from another BLAS or batch size, cannot move a question across it).
Ties go to the lowest candidate: the one that refuses the fewest answerable
questions.
"""
from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import NamedTuple, Protocol

import numpy as np

from .. import evaluation as taught
from .._infra.validation import check_texts

__all__ = [
    "DEFAULT_MIN_SCORE",
    "candidate_thresholds",
    "Tradeoff",
    "best_scores",
    "error_rates",
    "threshold_tradeoff",
    "choose_threshold",
]

#: The abstention threshold of ``RAGPipeline(..., min_score=DEFAULT_MIN_SCORE)``.
#: Chosen by ``choose_threshold`` (smallest sum of the two error rates; the
#: choice, 0.46355, rounded to 3 decimals, which changes no error) on the dev
#: half: the best dense score (all-MiniLM-L6-v2, cosine) of each of its 87
#: answerable labelled questions and 23 unanswerable ones, retrieving from the
#: whole Python-docs corpus (27 pages, default chunking: 200 tokens, overlap
#: 40, 1,861 chunks). Dev: 20.7% (18/87) of the answerable questions wrongly
#: refused, 13.0% (3/23) of the unanswerable ones wrongly answered. Test half,
#: measured once afterwards: 11.5% (10/87) wrongly refused, 13.0% (3/23)
#: wrongly answered. ``python -m benchmarks.evaluation`` recomputes all four.
DEFAULT_MIN_SCORE = 0.464

# Where the lowest and highest candidates lie, beyond the lowest and highest scores.
_BEYOND = 0.05


class Tradeoff(NamedTuple):
    """Both error rates at each candidate threshold; unpacks as ``t, refused, answered = ...``.

    thresholds : (m,) float64, ascending.
    wrongly_refused : (m,) float64, the fraction of answerable questions with best score < t.
    wrongly_answered : (m,) float64, the fraction of unanswerable questions with best score >= t.
    """

    thresholds: np.ndarray
    wrongly_refused: np.ndarray
    wrongly_answered: np.ndarray

    @property
    def total(self) -> np.ndarray:
        """(m,) float64, wrongly refused + wrongly answered: what the default rule minimises."""
        return self.wrongly_refused + self.wrongly_answered


class _Retrievers(Protocol):
    """What ``best_scores`` needs of a pipeline (a ``RAGPipeline`` has both)."""

    encoder: object
    doc_embeddings: np.ndarray


def best_scores(pipeline: _Retrievers, questions: Sequence[str]) -> np.ndarray:
    """(q,) float32: the score of each question's best document, as ``pipeline.retrieve(question, 1)`` gives it.

    The questions are embedded in one batch (``rh.embed``) and searched with
    ``rh.search``, the steps ``RAGPipeline.retrieve`` takes: the numbers it
    compares with ``min_score`` (to float rounding; a batch pads its texts).
    """
    # Imported here: rh.DEFAULT_MIN_SCORE must not pay for the embedding model's libraries.
    from .embeddings import embed
    from .retrieval import search

    questions = check_texts(questions, name="questions")
    query_vecs = embed(questions, pipeline.encoder)  # (q, dim) float32, unit rows
    _, scores = search(query_vecs, pipeline.doc_embeddings, 1)  # (q, 1)
    return scores[:, 0]


def error_rates(best_answerable: np.ndarray, best_unanswerable: np.ndarray,
                threshold: float) -> tuple[float, float]:
    """``(wrongly_refused, wrongly_answered)`` at one threshold, as fractions in [0, 1].

    A question is refused when its best score is strictly below
    ``threshold``, as in ``RAGPipeline``: a score equal to it is answered.
    """
    answerable, unanswerable = _check_scores(best_answerable, best_unanswerable)
    refused, answered = taught.tradeoff(answerable, unanswerable, [_check_threshold(threshold)])
    return float(refused[0]), float(answered[0])


def candidate_thresholds(best_answerable: np.ndarray, best_unanswerable: np.ndarray) -> np.ndarray:
    """(m,) float64, ascending: halfway between each two consecutive distinct scores, and one beyond each end.

    Between two consecutive scores the error rates do not change, so these
    m candidates are every distinct trade-off there is: the lowest answers
    every question, the highest refuses them all.
    """
    answerable, unanswerable = _check_scores(best_answerable, best_unanswerable)
    return taught.candidate_thresholds(answerable, unanswerable, beyond=_BEYOND)


def threshold_tradeoff(best_answerable: np.ndarray, best_unanswerable: np.ndarray,
                       thresholds: np.ndarray | None = None) -> Tradeoff:
    """Both error rates at every threshold of ``thresholds`` (default ``candidate_thresholds``).

    Parameters
    ----------
    best_answerable : (a,) the best score of each answerable question.
    best_unanswerable : (u,) the best score of each unanswerable question.
    thresholds : (m,) ascending candidates.
    """
    answerable, unanswerable = _check_scores(best_answerable, best_unanswerable)
    if thresholds is None:
        grid = candidate_thresholds(answerable, unanswerable)
    else:
        grid = _check_grid(thresholds)
    refused, answered = taught.tradeoff(answerable, unanswerable, grid)  # (m,) each
    return Tradeoff(grid.astype(np.float64), refused, answered)


def choose_threshold(best_answerable: np.ndarray, best_unanswerable: np.ndarray, *,
                     max_wrongly_refused: float | None = None,
                     thresholds: np.ndarray | None = None) -> float:
    """The threshold the rule picks (see the module docstring), one of ``thresholds``.

    Default rule: the smallest wrongly refused + wrongly answered. With
    ``max_wrongly_refused=c`` (in [0, 1]): the fewest wrongly answered among
    the thresholds whose wrongly refused is at most ``c``. Ties: the lowest
    threshold. ``thresholds``: the candidates, default ``candidate_thresholds``.
    """
    if max_wrongly_refused is None and thresholds is None:
        # The rule of notebook 09, on checked scores.
        return taught.choose_threshold(*_check_scores(best_answerable, best_unanswerable))
    curve = threshold_tradeoff(best_answerable, best_unanswerable, thresholds)
    if max_wrongly_refused is None:
        cost = curve.total
    else:
        if (isinstance(max_wrongly_refused, bool) or not isinstance(max_wrongly_refused, numbers.Real)
                or not 0 <= max_wrongly_refused <= 1):
            raise ValueError(f"max_wrongly_refused must be a fraction in [0, 1], got {max_wrongly_refused!r}")
        allowed = curve.wrongly_refused <= max_wrongly_refused
        if not allowed.any():
            raise ValueError(f"no threshold refuses at most {max_wrongly_refused:.1%} of the answerable questions: "
                             f"the lowest candidate, {curve.thresholds[0]}, already refuses "
                             f"{curve.wrongly_refused[0]:.1%}; give lower thresholds")
        cost = np.where(allowed, curve.wrongly_answered, np.inf)
    # argmin returns the first minimum: the lowest threshold among ties.
    return float(curve.thresholds[int(np.argmin(cost))])


# ----------------------------------------------------------------- input checks

def _check_scores(answerable: object, unanswerable: object) -> tuple[np.ndarray, np.ndarray]:
    checked = []
    for name, scores in (("best_answerable", answerable), ("best_unanswerable", unanswerable)):
        array = np.asarray(scores)
        if array.dtype.kind not in "iuf":
            raise TypeError(f"{name} must hold numbers (best scores), got dtype {array.dtype}")
        if array.ndim != 1 or array.size == 0:
            raise ValueError(f"{name} must be a non-empty (n,) array of best scores, one per question, "
                             f"got shape {array.shape}")
        bad = np.flatnonzero(~np.isfinite(array))
        if bad.size:
            raise ValueError(f"{name}[{bad[0]}] is {array[bad[0]]}: every score must be finite")
        checked.append(array.astype(np.float64))
    return checked[0], checked[1]


def _check_threshold(threshold: object) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    return float(threshold)


def _check_grid(thresholds: object) -> np.ndarray:
    grid = np.asarray(thresholds, dtype=np.float64)
    if grid.ndim != 1 or grid.size == 0 or not np.isfinite(grid).all():
        raise ValueError(f"thresholds must be a non-empty (m,) array of finite numbers, got shape {grid.shape}")
    if (np.diff(grid) <= 0).any():
        raise ValueError("thresholds must be strictly ascending")
    return grid
