"""Notebook 08's self-checks can fail: each rejects known wrong answers.

For each exercise of notebooks/08_your_own_documents.ipynb the check cell (defined once, in the
course notebook; tools/selfchecks.py copies it into the solutions notebook) is run with exec()
- after the solution from the solutions notebook: it must pass and say "correct";
- after the empty exercise cell (the function returns None): it must say "not attempted";
- after each of at least two known wrong answers: it must raise AssertionError.

The namespace holds what the notebook has defined when the checks run: np, rh, the real
packaged encoder and its tokenizer, the notebook's own module (rag_helpers/documents.py, written
from its `#| export` cells: Chunk, chunk_documents, token_windows, PARAGRAPH, WORD), the corpus
pages by source and `page` (the design FAQ).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import rag_helpers as rh
from rag_helpers import documents

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
        "merges only neighbours in the order given (no sort)": """
            def merge_hits(chunks):
                passages = []
                for c in chunks:
                    if passages and passages[-1][0] == c.source and c.start <= passages[-1][2] \\
                            and passages[-1][1] <= c.end:
                        source, start, end = passages[-1]
                        passages[-1] = (source, min(start, c.start), max(end, c.end))
                    else:
                        passages.append((c.source, c.start, c.end))
                return passages
            """,
        "touching chunks kept apart": """
            def merge_hits(chunks):
                groups = {}
                for i, c in enumerate(chunks):
                    groups.setdefault(c.source, []).append((c.start, c.end, i))
                passages = []
                for source, spans in groups.items():
                    spans.sort()
                    start, end, best = spans[0]
                    for s, e, i in spans[1:]:
                        if s < end:
                            end, best = max(end, e), min(best, i)
                        else:
                            passages.append((best, source, start, end))
                            start, end, best = s, e, i
                    passages.append((best, source, start, end))
                return [p[1:] for p in sorted(passages)]
            """,
        "sources mixed up": """
            def merge_hits(chunks):
                spans = sorted((c.start, c.end, i, c.source) for i, c in enumerate(chunks))
                passages = []
                start, end, best, source = spans[0]
                for s, e, i, src in spans[1:]:
                    if s <= end:
                        end, best = max(end, e), min(best, i)
                    else:
                        passages.append((best, source, start, end))
                        start, end, best, source = s, e, i, src
                passages.append((best, source, start, end))
                return [p[1:] for p in sorted(passages)]
            """,
        "passages in page order, not by their best chunk": """
            def merge_hits(chunks):
                spans = sorted((c.source, c.start, c.end) for c in chunks)
                passages = [spans[0]]
                for source, s, e in spans[1:]:
                    if source == passages[-1][0] and s <= passages[-1][2]:
                        passages[-1] = (source, passages[-1][1], max(passages[-1][2], e))
                    else:
                        passages.append((source, s, e))
                return passages
            """,
    },
}


@pytest.fixture(scope="module")
def notebook_names(encoder):
    """What the notebook has defined by the time its checks run."""
    by_source = {d.source: d for d in documents.load_python_docs()}
    module = {name: getattr(documents, name) for name in ("Chunk", "chunk_documents", "token_windows", "PARAGRAPH", "WORD")}
    return {"encoder": encoder, "tokenizer": encoder.tokenizer, **module,
            "by_source": by_source, "page": by_source["faq/design.rst"]}


@pytest.fixture
def run_after(notebook_names):
    """run_after(exercise, code): run `code`, then the exercise's check; returns what it printed."""

    def run(exercise: str, code: str) -> str:
        return selfchecks.run_check(NOTEBOOK, exercise, code, {"np": np, "rh": rh, **notebook_names})

    return run


globals().update(exercise_tests(NOTEBOOK, WRONG))
