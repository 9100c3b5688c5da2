"""Notebook 02's self-checks reject known wrong answers (tests/selfcheck_suite.py); the namespace holds np and rh."""
from __future__ import annotations

import numpy as np

import rag_helpers as rh

from selfcheck_suite import ROOT, exercise_tests

NOTEBOOK = ROOT / "notebooks" / "02_normalization.ipynb"

# Known wrong answers, each as a learner would write it: exercise -> {mistake: code}.
WRONG: dict[str, dict[str, str]] = {
    "exercise-1": {
        "no rescaling: the one-liner as it is": """
            from rag_helpers.normalization import l2_normalize

            def robust_l2_normalize(x):
                return l2_normalize(x)
            """,
        "one factor for the whole matrix": """
            from rag_helpers.normalization import l2_normalize

            def robust_l2_normalize(x):
                return l2_normalize(x / np.max(np.abs(x)))
            """,
        "largest value, not largest |value|": """
            from rag_helpers.normalization import l2_normalize

            def robust_l2_normalize(x):
                return l2_normalize(x / np.max(x, axis=1, keepdims=True))
            """,
        "float64 instead of rescaling": """
            from rag_helpers.normalization import l2_normalize

            def robust_l2_normalize(x):
                return l2_normalize(x.astype(np.float64)).astype(x.dtype)
            """,
        "float64 out": """
            from rag_helpers.normalization import l2_normalize

            def robust_l2_normalize(x):
                x = x.astype(np.float64)
                return l2_normalize(x / np.max(np.abs(x), axis=1, keepdims=True))
            """,
    },
    "exercise-2": {
        "no clip: NaN for a vector with itself": """
            def angle_degrees(a, b):
                return float(np.degrees(np.arccos(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))))
            """,
        "radians": """
            def angle_degrees(a, b):
                cosine = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
                return float(np.arccos(np.clip(cosine, -1.0, 1.0)))
            """,
        "not normalized (only right for unit vectors)": """
            def angle_degrees(a, b):
                return float(np.degrees(np.arccos(np.clip(a @ b, -1.0, 1.0))))
            """,
        "divides by one norm": """
            def angle_degrees(a, b):
                cosine = a @ b / np.linalg.norm(a) ** 2
                return float(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))))
            """,
    },
}


globals().update(exercise_tests(NOTEBOOK, WRONG, {"np": np, "rh": rh}))
