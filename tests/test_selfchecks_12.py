"""Notebook 12's self-checks can fail: each rejects known wrong answers, passes the solution, and says
"not attempted" for the empty exercise.

The check cells are taken from the course notebook (tools/selfchecks.py copies them into the solutions
notebook) and run with exec() after the code under test, in a namespace holding what the notebook's
checks and solutions use: np and rh. They need no model.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

import rag_helpers as rh
from selfcheck_suite import exercise_tests

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "12_changing_documents.ipynb"

# Known wrong answers, each as a learner would write it: exercise -> {mistake: code}.
WRONG: dict[str, dict[str, str]] = {
    "exercise-1": {
        "a key shared by several new chunks counted each time": """
            def embeddings_needed(old_keys, new_keys):
                return sum(1 for key in new_keys if key not in old_keys)
            """,
        "the change in the number of chunks": """
            def embeddings_needed(old_keys, new_keys):
                return max(len(new_keys) - len(old_keys), 0)
            """,
        "deleted keys counted too (symmetric difference)": """
            def embeddings_needed(old_keys, new_keys):
                return len(set(old_keys) ^ set(new_keys))
            """,
        "every new chunk embedded (no reuse)": """
            def embeddings_needed(old_keys, new_keys):
                return len(set(new_keys))
            """,
    },
    "exercise-2": {
        "filtered after the top-k": """
            def search_where(query, docs, k, allowed):
                best = np.argsort(-(docs @ query), kind="stable")[:k]
                return best[allowed[best]]
            """,
        "positions in the allowed subset, not row numbers of docs": """
            def search_where(query, docs, k, allowed):
                return np.argsort(-(docs[allowed] @ query), kind="stable")[:k]
            """,
        "worst first (ascending scores)": """
            def search_where(query, docs, k, allowed):
                rows = np.flatnonzero(allowed)
                return rows[np.argsort(docs[rows] @ query, kind="stable")[:k]]
            """,
        "the allowed rows in row order, not by score": """
            def search_where(query, docs, k, allowed):
                return np.flatnonzero(allowed)[:k]
            """,
        "the filter ignored": """
            def search_where(query, docs, k, allowed):
                return np.argsort(-(docs @ query), kind="stable")[:k]
            """,
    },
}

globals().update(exercise_tests(NOTEBOOK, WRONG, {"np": np, "rh": rh}))
