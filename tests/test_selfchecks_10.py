"""Notebook 10's self-checks can fail: each rejects known wrong answers, passes the solution, and says
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

NOTEBOOK = ROOT / "notebooks" / "10_scaling.ipynb"

# Known wrong answers, each as a learner would write it: exercise -> {mistake: code}.
WRONG: dict[str, dict[str, str]] = {
    "exercise-1": {
        "d // 8 for binary: forgets the padded last byte": """
            def bytes_per_vector(d, kind):
                return d // 8 if kind == "binary" else d * {"float32": 4, "float16": 2, "int8": 1}[kind]
            """,
        "d / 8 for binary: a float, and a fraction of a byte": """
            def bytes_per_vector(d, kind):
                return d / 8 if kind == "binary" else d * {"float32": 4, "float16": 2, "int8": 1}[kind]
            """,
        "bits instead of bytes for binary": """
            def bytes_per_vector(d, kind):
                return d if kind == "binary" else d * {"float32": 4, "float16": 2, "int8": 1}[kind]
            """,
        "float16 counted as 4 bytes": """
            def bytes_per_vector(d, kind):
                return (d + 7) // 8 if kind == "binary" else d * {"float32": 4, "float16": 4, "int8": 1}[kind]
            """,
        "a float from np.ceil": """
            def bytes_per_vector(d, kind):
                return np.ceil(d / 8) if kind == "binary" else d * {"float32": 4, "float16": 2, "int8": 1}[kind]
            """,
    },
    "exercise-2": {
        "truncates towards zero instead of rounding": """
            def quantize_global(vecs):
                scale = np.abs(vecs).max() / 127
                return (vecs / scale).astype(np.int8), scale
            """,
        "one scale per dimension, not one global scale": """
            def quantize_global(vecs):
                scale = np.abs(vecs).max(axis=0) / 127
                return np.clip(np.rint(vecs / scale), -127, 127).astype(np.int8), scale
            """,
        "the scale of 255 levels: codes use only half the range": """
            def quantize_global(vecs):
                scale = np.abs(vecs).max() / 255
                return np.clip(np.rint(vecs / scale), -127, 127).astype(np.int8), scale
            """,
        "the largest value instead of the largest |value|": """
            def quantize_global(vecs):
                scale = vecs.max() / 127
                return np.clip(np.rint(vecs / scale), -127, 127).astype(np.int8), scale
            """,
    },
    "exercise-3": {
        "the query coded without the center": """
            def search_binary_centered(query, doc_vecs, k, m):
                from rag_helpers.scaling import binary_codes, hamming_distances
                center = doc_vecs.mean(axis=0)
                distance = hamming_distances(binary_codes(query), binary_codes(doc_vecs - center))
                shortlist = np.sort(np.argsort(distance, kind="stable")[:m])
                scores = doc_vecs[shortlist] @ query
                best = np.argsort(-scores, kind="stable")[:k]
                return shortlist[best], scores[best]
            """,
        "no centering at all": """
            def search_binary_centered(query, doc_vecs, k, m):
                from rag_helpers.scaling import search_binary, binary_codes
                return search_binary(query, binary_codes(doc_vecs), doc_vecs, k, m)
            """,
        "rescored with the centered vectors": """
            def search_binary_centered(query, doc_vecs, k, m):
                from rag_helpers.scaling import binary_codes, hamming_distances
                center = doc_vecs.mean(axis=0)
                distance = hamming_distances(binary_codes(query - center), binary_codes(doc_vecs - center))
                shortlist = np.sort(np.argsort(distance, kind="stable")[:m])
                scores = (doc_vecs[shortlist] - center) @ (query - center)
                best = np.argsort(-scores, kind="stable")[:k]
                return shortlist[best], scores[best]
            """,
        "centered on the query instead of the documents' mean": """
            def search_binary_centered(query, doc_vecs, k, m):
                from rag_helpers.scaling import binary_codes, hamming_distances
                distance = hamming_distances(binary_codes(query - query), binary_codes(doc_vecs - query))
                shortlist = np.sort(np.argsort(distance, kind="stable")[:m])
                scores = doc_vecs[shortlist] @ query
                best = np.argsort(-scores, kind="stable")[:k]
                return shortlist[best], scores[best]
            """,
    },
}


@pytest.fixture
def run_after():
    """Run ``code``, then the exercise's check cell, in one fresh namespace; return what the check printed."""
    return lambda exercise, code: selfchecks.run_check(NOTEBOOK, exercise, code, {"np": np, "rh": rh})


globals().update(exercise_tests(NOTEBOOK, WRONG))
