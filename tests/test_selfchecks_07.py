"""Notebook 07's self-checks reject known wrong answers (tests/selfcheck_suite.py); the namespace holds np, rh, the packaged encoder and `pipe` (the sample documents, k = 2, no generator loaded)."""
from __future__ import annotations

import numpy as np
import pytest

import rag_helpers as rh

from selfcheck_suite import ROOT, exercise_tests, selfchecks

NOTEBOOK = ROOT / "notebooks" / "07_full_pipeline.ipynb"

# Known wrong answers, each as a learner would write it: exercise -> {mistake: code}.
WRONG: dict[str, dict[str, str]] = {
    "exercise-1": {
        "returns the (score, document) pair": """
            def best_document(question, documents):
                return rh.RAGPipeline(documents, k=1, encoder=encoder).retrieve(question)[0]
            """,
        "the worst document": """
            def best_document(question, documents):
                ranking = rh.RAGPipeline(documents, encoder=encoder).retrieve(question, k=len(documents))
                return ranking[-1][1]
            """,
        "the first document given": """
            def best_document(question, documents):
                return documents[0]
            """,
    },
    "exercise-2": {
        "off by one (counts from 0)": """
            def rank_of(pipe, question, needle):
                ranking = pipe.retrieve(question, k=len(pipe.documents))
                return next(rank for rank, (_, doc) in enumerate(ranking) if needle in doc)
            """,
        "the document's position in the knowledge base, not in the ranking": """
            def rank_of(pipe, question, needle):
                return 1 + next(i for i, doc in enumerate(pipe.documents) if needle in doc)
            """,
        "ranked worst first": """
            def rank_of(pipe, question, needle):
                ranking = pipe.retrieve(question, k=len(pipe.documents))[::-1]
                return next(rank for rank, (_, doc) in enumerate(ranking, start=1) if needle in doc)
            """,
    },
    "exercise-3": {
        "the usual order (best first)": """
            def best_last(pipe, question, k):
                return pipe.prepare(question, k, fit=False).prompt
            """,
        "the pipeline's own k, not the k asked for": """
            def best_last(pipe, question, k):
                return rh.build_prompt(question, [hit.document for hit in pipe.retrieve(question)][::-1])
            """,
        "only the best document moved to the end": """
            def best_last(pipe, question, k):
                ranked = [hit.document for hit in pipe.retrieve(question, k=k)]
                return rh.build_prompt(question, ranked[1:] + ranked[:1])
            """,
        "the k worst documents of the whole knowledge base": """
            def best_last(pipe, question, k):
                everything = [hit.document for hit in pipe.retrieve(question, k=len(pipe.documents))]
                return rh.build_prompt(question, everything[::-1][:k])
            """,
    },
}


@pytest.fixture(scope="module")
def pipe(encoder):
    """Notebook 07's `pipe`: the sample documents, k = 2, no generator loaded (none is needed)."""
    return rh.RAGPipeline(rh.SAMPLE_DOCUMENTS, k=2, encoder=encoder)


@pytest.fixture
def run_after(encoder, pipe):
    """run_after(exercise, code): run `code`, then the exercise's check; returns what it printed."""

    def run(exercise: str, code: str) -> str:
        return selfchecks.run_check(NOTEBOOK, exercise, code, {"np": np, "rh": rh, "encoder": encoder, "pipe": pipe})

    return run


globals().update(exercise_tests(NOTEBOOK, WRONG))
