"""Notebook 08's self-checks can fail: each rejects known wrong answers.

For each exercise of notebooks/08_your_own_documents.ipynb the check cell (defined once, in the
course notebook; tools/selfchecks.py copies it into the solutions notebook) is run with exec()
- after the solution from the solutions notebook: it must pass and say "correct";
- after the empty exercise cell (the function returns None): it must say "not attempted";
- after each of at least two known wrong answers: it must raise AssertionError.

The namespace holds what the notebook has defined when the checks run: np, rh, the real
packaged encoder and its tokenizer, the chunking and corpus modules, the corpus pages by
source and `page` (the design FAQ).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import rag_helpers as rh
from rag_helpers import chunking, corpus

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import selfchecks  # noqa: E402
from selfcheck_suite import exercise_tests  # noqa: E402

NOTEBOOK = ROOT / "notebooks" / "08_your_own_documents.ipynb"

# Known wrong answers, each as a learner would write it: exercise -> {mistake: code}.
WRONG: dict[str, dict[str, str]] = {
    "exercise-1": {
        "characters, not tokens": """
            def fits_in_window(text):
                return len(text) <= encoder.max_seq_length
            """,
        "words, not tokens": """
            def fits_in_window(text):
                return len(text.split()) + 2 <= encoder.max_seq_length
            """,
        "[CLS] and [SEP] not counted": """
            def fits_in_window(text):
                return len(tokenizer.tokenize(text)) <= encoder.max_seq_length
            """,
        "counted after truncation": """
            def fits_in_window(text):
                ids = tokenizer(text, truncation=True, max_length=encoder.max_seq_length)["input_ids"]
                return len(ids) <= encoder.max_seq_length
            """,
        "a number, not True or False": """
            def fits_in_window(text):
                return encoder.max_seq_length - len(tokenizer(text, verbose=False)["input_ids"]) + 1
            """,
    },
    "exercise-2": {
        "overlap ignored": """
            def n_chunks(n_tokens, chunk_tokens, overlap):
                return -(-n_tokens // chunk_tokens)
            """,
        "every chunk a step, the first one too": """
            def n_chunks(n_tokens, chunk_tokens, overlap):
                return -(-n_tokens // (chunk_tokens - overlap))
            """,
        "a text shorter than the overlap gives no chunk": """
            def n_chunks(n_tokens, chunk_tokens, overlap):
                return max(0, -(-(n_tokens - overlap) // (chunk_tokens - overlap)))
            """,
        "floor instead of ceiling": """
            def n_chunks(n_tokens, chunk_tokens, overlap):
                if n_tokens == 0:
                    return 0
                return 1 + max(0, n_tokens - chunk_tokens) // (chunk_tokens - overlap)
            """,
    },
    "exercise-3": {
        "lines counted from 0": """
            def line_of(text, offset):
                return text.count("\\n", 0, offset)
            """,
        "the line break at the offset counted": """
            def line_of(text, offset):
                return text[:offset + 1].count("\\n") + 1
            """,
        "splitlines of the text before": """
            def line_of(text, offset):
                return len(text[:offset].splitlines())
            """,
        "\\r\\n counted as two line ends": """
            def line_of(text, offset):
                before = text[:offset]
                return before.count("\\n") + before.count("\\r") + 1
            """,
    },
}


@pytest.fixture(scope="module")
def notebook_names(encoder):
    """What the notebook has defined by the time its checks run."""
    by_source = {d.source: d for d in corpus.load_python_docs()}
    return {"encoder": encoder, "tokenizer": encoder.tokenizer, "chunking": chunking, "corpus": corpus,
            "by_source": by_source, "page": by_source["faq/design.rst"]}


@pytest.fixture
def run_after(notebook_names):
    """run_after(exercise, code): run `code`, then the exercise's check; returns what it printed."""

    def run(exercise: str, code: str) -> str:
        return selfchecks.run_check(NOTEBOOK, exercise, code, {"np": np, "rh": rh, **notebook_names})

    return run


globals().update(exercise_tests(NOTEBOOK, WRONG))
