"""Notebook 09's self-checks can fail: each rejects known wrong answers, passes the solution, and says
"not attempted" for the empty exercise.

The check cells are taken from the course notebook (where they are defined once; tools/selfchecks.py
copies them into the solutions notebook) and run with exec() after the code under test, in a namespace
holding what the notebook's checks use: np and rh. They need no model, so this file runs in seconds.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import rag_helpers as rh

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import selfchecks  # noqa: E402
from selfcheck_suite import exercise_tests  # noqa: E402

NOTEBOOK = ROOT / "notebooks" / "09_evaluation.ipynb"

# Known wrong answers, each as a learner would write it: exercise -> {mistake: code}.
WRONG: dict[str, dict[str, str]] = {
    "exercise-1": {
        "divides by the number of relevant ids (that is recall)": """
            def precision_at_k(ranking, relevant, k):
                return sum(doc in relevant for doc in ranking[:k]) / len(relevant)
            """,
        "divides by the length of the cut ranking, not by k": """
            def precision_at_k(ranking, relevant, k):
                top = ranking[:k]
                return sum(doc in relevant for doc in top) / len(top)
            """,
        "counts the whole ranking, not the first k": """
            def precision_at_k(ranking, relevant, k):
                return sum(doc in relevant for doc in ranking) / k
            """,
        "off by one: the first k - 1": """
            def precision_at_k(ranking, relevant, k):
                return sum(doc in relevant for doc in ranking[: k - 1]) / k
            """,
    },
    "exercise-2": {
        "a score equal to t is refused (<= instead of <)": """
            def threshold_errors(best_answerable, best_unanswerable, t):
                return float(np.mean(best_answerable <= t)), float(np.mean(best_unanswerable > t))
            """,
        "the two errors swapped": """
            def threshold_errors(best_answerable, best_unanswerable, t):
                return float(np.mean(best_unanswerable >= t)), float(np.mean(best_answerable < t))
            """,
        "counts instead of fractions": """
            def threshold_errors(best_answerable, best_unanswerable, t):
                return int(np.sum(best_answerable < t)), int(np.sum(best_unanswerable >= t))
            """,
        "the unanswerable side reversed (refused ones counted)": """
            def threshold_errors(best_answerable, best_unanswerable, t):
                return float(np.mean(best_answerable < t)), float(np.mean(best_unanswerable < t))
            """,
        "fractions of all the questions together": """
            def threshold_errors(best_answerable, best_unanswerable, t):
                n = len(best_answerable) + len(best_unanswerable)
                return float(np.sum(best_answerable < t) / n), float(np.sum(best_unanswerable >= t) / n)
            """,
    },
    "exercise-3": {
        "the cap ignored: the smallest sum again": """
            def choose_capped(best_answerable, best_unanswerable, max_refused):
                from rag_helpers.evaluation import choose_threshold
                return choose_threshold(best_answerable, best_unanswerable)
            """,
        "strictly below the cap instead of at most": """
            def choose_capped(best_answerable, best_unanswerable, max_refused):
                from rag_helpers.evaluation import candidate_thresholds, tradeoff
                t = candidate_thresholds(best_answerable, best_unanswerable)
                refused, answered = tradeoff(best_answerable, best_unanswerable, t)
                return float(t[np.argmin(np.where(refused < max_refused, answered, np.inf))])
            """,
        "the highest of equal candidates": """
            def choose_capped(best_answerable, best_unanswerable, max_refused):
                from rag_helpers.evaluation import candidate_thresholds, tradeoff
                t = candidate_thresholds(best_answerable, best_unanswerable)
                refused, answered = tradeoff(best_answerable, best_unanswerable, t)
                cost = np.where(refused <= max_refused, answered, np.inf)
                return float(t[len(t) - 1 - np.argmin(cost[::-1])])
            """,
        "the index of the candidate, not the threshold": """
            def choose_capped(best_answerable, best_unanswerable, max_refused):
                from rag_helpers.evaluation import candidate_thresholds, tradeoff
                t = candidate_thresholds(best_answerable, best_unanswerable)
                refused, answered = tradeoff(best_answerable, best_unanswerable, t)
                return int(np.argmin(np.where(refused <= max_refused, answered, np.inf)))
            """,
        "the fewest refused under a cap on the answered": """
            def choose_capped(best_answerable, best_unanswerable, max_refused):
                from rag_helpers.evaluation import candidate_thresholds, tradeoff
                t = candidate_thresholds(best_answerable, best_unanswerable)
                refused, answered = tradeoff(best_answerable, best_unanswerable, t)
                return float(t[np.argmin(np.where(answered <= max_refused, refused, np.inf))])
            """,
    },
}


@pytest.fixture
def run_after():
    """Run ``code``, then the exercise's check cell, in one fresh namespace; return what the check printed."""
    return lambda exercise, code: selfchecks.run_check(NOTEBOOK, exercise, code, {"np": np, "rh": rh})


globals().update(exercise_tests(NOTEBOOK, WRONG))
