"""Notebook 03's self-checks reject known wrong answers (tests/selfcheck_suite.py); the namespace holds np and rh."""
from __future__ import annotations

import numpy as np

import rag_helpers as rh

from selfcheck_suite import ROOT, exercise_tests

NOTEBOOK = ROOT / "notebooks" / "03_vectorized_scoring.ipynb"

# Known wrong answers, each as a learner would write it: exercise -> {mistake: code}.
WRONG: dict[str, dict[str, str]] = {
    "exercise-1": {
        "one product, no blocks": """
            def scores_in_blocks(query, docs, block_rows):
                return docs @ query
            """,
        "the last, shorter block dropped": """
            def scores_in_blocks(query, docs, block_rows):
                scores = np.zeros(len(docs), dtype=np.float32)
                for start in range(0, len(docs) - block_rows + 1, block_rows):
                    scores[start:start + block_rows] = docs[start:start + block_rows] @ query
                return scores
            """,
        "every block written at the start": """
            def scores_in_blocks(query, docs, block_rows):
                scores = np.zeros(len(docs), dtype=np.float32)
                for start in range(0, len(docs), block_rows):
                    block = docs[start:start + block_rows] @ query
                    scores[:len(block)] = block
                return scores
            """,
        "blocks one row too large": """
            def scores_in_blocks(query, docs, block_rows):
                scores = np.zeros(len(docs), dtype=np.float32)
                for start in range(0, len(docs), block_rows):
                    scores[start:start + block_rows + 1] = docs[start:start + block_rows + 1] @ query
                return scores
            """,
    },
    "exercise-2": {
        "GiB (2**30) instead of GB": """
            def min_seconds_per_query(n, d, dtype, gigabytes_per_second):
                return n * d * np.dtype(dtype).itemsize / (gigabytes_per_second * 2**30)
            """,
        "always 4 bytes a number": """
            def min_seconds_per_query(n, d, dtype, gigabytes_per_second):
                return n * d * 4 / (gigabytes_per_second * 1e9)
            """,
        "bits, not bytes": """
            def min_seconds_per_query(n, d, dtype, gigabytes_per_second):
                return n * d * np.dtype(dtype).itemsize * 8 / (gigabytes_per_second * 1e9)
            """,
    },
}


globals().update(exercise_tests(NOTEBOOK, WRONG, {"np": np, "rh": rh}))
