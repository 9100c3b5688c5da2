"""Notebook 04's self-checks reject known wrong answers (tests/selfcheck_suite.py); the namespace holds np and rh."""
from __future__ import annotations

import numpy as np

import rag_helpers as rh

from selfcheck_suite import ROOT, exercise_tests

NOTEBOOK = ROOT / "notebooks" / "04_top_k.ipynb"

# Known wrong answers, each as a learner would write it: exercise -> {mistake: code}.
WRONG: dict[str, dict[str, str]] = {
    "exercise-1": {
        "unstable sort": """
            def indices_above(scores, threshold):
                order = np.argsort(-scores)
                return order[: np.count_nonzero(scores >= threshold)]
            """,
        "reversed ascending sort": """
            def indices_above(scores, threshold):
                order = np.argsort(scores, kind="stable")[::-1]
                return order[: np.count_nonzero(scores >= threshold)]
            """,
        "strictly above the threshold": """
            def indices_above(scores, threshold):
                order = np.argsort(-scores, kind="stable")
                return order[: np.count_nonzero(scores > threshold)]
            """,
        "in index order, not best first": """
            def indices_above(scores, threshold):
                return np.flatnonzero(scores >= threshold)
            """,
    },
    "exercise-2": {
        "unstable sort": """
            def top_k_each_row(score_matrix, k):
                return np.argsort(-score_matrix, axis=1)[:, :k]
            """,
        "sorted along the wrong axis": """
            def top_k_each_row(score_matrix, k):
                return np.argsort(-score_matrix, axis=0, kind="stable")[:, :k]
            """,
        "reversed ascending sort": """
            def top_k_each_row(score_matrix, k):
                return np.argsort(score_matrix, axis=1, kind="stable")[:, ::-1][:, :k]
            """,
        "k rows instead of k columns": """
            def top_k_each_row(score_matrix, k):
                return np.argsort(-score_matrix, axis=1, kind="stable")[:k]
            """,
    },
    "exercise-3": {
        "the new block's candidates first in the merge (ties go to later documents)": """
            def top_k_in_blocks(scores, k, block):
                best_idx, best_val = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
                for start in range(0, len(scores), block):
                    part = scores[start:start + block]
                    local = np.argsort(-part, kind="stable")[:k]
                    pool_idx = np.concatenate([local + start, best_idx])
                    pool_val = np.concatenate([part[local], best_val])
                    keep = np.argsort(-pool_val, kind="stable")[:k]
                    best_idx, best_val = pool_idx[keep], pool_val[keep]
                return best_idx
            """,
        "unstable sort in the merge": """
            def top_k_in_blocks(scores, k, block):
                best_idx, best_val = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
                for start in range(0, len(scores), block):
                    part = scores[start:start + block]
                    local = np.argsort(-part, kind="stable")[:k]
                    pool_idx = np.concatenate([best_idx, local + start])
                    pool_val = np.concatenate([best_val, part[local]])
                    keep = np.argsort(-pool_val)[:k]
                    best_idx, best_val = pool_idx[keep], pool_val[keep]
                return best_idx
            """,
        "the block's offset forgotten": """
            def top_k_in_blocks(scores, k, block):
                best_idx, best_val = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
                for start in range(0, len(scores), block):
                    part = scores[start:start + block]
                    local = np.argsort(-part, kind="stable")[:k]
                    pool_idx = np.concatenate([best_idx, local])
                    pool_val = np.concatenate([best_val, part[local]])
                    keep = np.argsort(-pool_val, kind="stable")[:k]
                    best_idx, best_val = pool_idx[keep], pool_val[keep]
                return best_idx
            """,
        "only each block's best one kept": """
            def top_k_in_blocks(scores, k, block):
                best_idx, best_val = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
                for start in range(0, len(scores), block):
                    part = scores[start:start + block]
                    local = np.argsort(-part, kind="stable")[:1]
                    pool_idx = np.concatenate([best_idx, local + start])
                    pool_val = np.concatenate([best_val, part[local]])
                    keep = np.argsort(-pool_val, kind="stable")[:k]
                    best_idx, best_val = pool_idx[keep], pool_val[keep]
                return best_idx
            """,
        "the whole array sorted at once": """
            def top_k_in_blocks(scores, k, block):
                return np.argsort(-np.asarray(scores), kind="stable")[:k]
            """,
    },
}


globals().update(exercise_tests(NOTEBOOK, WRONG, {"np": np, "rh": rh}))
