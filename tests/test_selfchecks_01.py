"""Notebook 01's self-checks reject known wrong answers (tests/selfcheck_suite.py); the namespace holds np, rh and the packaged encoder."""
from __future__ import annotations

import numpy as np
import pytest

import rag_helpers as rh

from selfcheck_suite import ROOT, exercise_tests, selfchecks

NOTEBOOK = ROOT / "notebooks" / "01_embeddings.ipynb"

# Known wrong answers, each as a learner would write it: exercise -> {mistake: code}.
WRONG: dict[str, dict[str, str]] = {
    "exercise-1": {
        "diagonal hidden with 0 instead of -inf": """
            def most_similar_pair(sims):
                masked = np.array(sims, dtype=np.float64)
                np.fill_diagonal(masked, 0.0)
                i, j = np.unravel_index(np.argmax(masked), masked.shape)
                return int(i), int(j)
            """,
        "diagonal not hidden": """
            def most_similar_pair(sims):
                i, j = np.unravel_index(np.argmax(sims), np.shape(sims))
                return int(i), int(j)
            """,
        "changes the caller's matrix": """
            def most_similar_pair(sims):
                np.fill_diagonal(sims, -np.inf)
                i, j = np.unravel_index(np.argmax(sims), sims.shape)
                return int(i), int(j)
            """,
    },
    "exercise-2": {
        "not centred": """
            def explained_variance_ratio(x):
                spread = np.linalg.svd(x, compute_uv=False) ** 2
                return spread / spread.sum()
            """,
        "singular values not squared": """
            def explained_variance_ratio(x):
                s = np.linalg.svd(x - x.mean(axis=0), compute_uv=False)
                return s / s.sum()
            """,
        "smallest first": """
            def explained_variance_ratio(x):
                spread = np.linalg.svd(x - x.mean(axis=0), compute_uv=False)[::-1] ** 2
                return spread / spread.sum()
            """,
        "variance of each column, not of each direction": """
            def explained_variance_ratio(x):
                spread = np.sort(np.var(x, axis=0))[::-1]
                return spread / spread.sum()
            """,
    },
    "exercise-3": {
        "diagonal not hidden": """
            def neighbours_kept(vectors, points_2d):
                similar = vectors @ vectors.T
                distances = np.linalg.norm(points_2d[:, None] - points_2d[None, :], axis=-1)
                return float(np.mean(similar.argmax(axis=1) == distances.argmin(axis=1)))
            """,
        "farthest point on the map (argmax of the distances)": """
            def neighbours_kept(vectors, points_2d):
                similar = vectors @ vectors.T
                np.fill_diagonal(similar, -np.inf)
                distances = np.linalg.norm(points_2d[:, None] - points_2d[None, :], axis=-1)
                np.fill_diagonal(distances, -np.inf)
                return float(np.mean(similar.argmax(axis=1) == distances.argmax(axis=1)))
            """,
        "cosine of the map's points instead of their distance": """
            def neighbours_kept(vectors, points_2d):
                similar = vectors @ vectors.T
                np.fill_diagonal(similar, -np.inf)
                unit = points_2d / np.linalg.norm(points_2d, axis=1, keepdims=True)
                on_map = unit @ unit.T
                np.fill_diagonal(on_map, -np.inf)
                return float(np.mean(similar.argmax(axis=1) == on_map.argmax(axis=1)))
            """,
        "a count, not a fraction": """
            def neighbours_kept(vectors, points_2d):
                similar = vectors @ vectors.T
                np.fill_diagonal(similar, -np.inf)
                distances = np.linalg.norm(points_2d[:, None] - points_2d[None, :], axis=-1)
                np.fill_diagonal(distances, np.inf)
                return int(np.sum(similar.argmax(axis=1) == distances.argmin(axis=1)))
            """,
    },
}


@pytest.fixture
def run_after(encoder):
    """run_after(exercise, code): run `code`, then the exercise's check; returns what it printed."""

    def run(exercise: str, code: str) -> str:
        return selfchecks.run_check(NOTEBOOK, exercise, code, {"np": np, "rh": rh, "encoder": encoder})

    return run


globals().update(exercise_tests(NOTEBOOK, WRONG))
