"""Notebook 05's self-checks reject known wrong answers (tests/selfcheck_suite.py); the namespace holds np, rh and the packaged generator."""
from __future__ import annotations

import numpy as np
import pytest

import rag_helpers as rh

from selfcheck_suite import ROOT, exercise_tests, selfchecks

NOTEBOOK = ROOT / "notebooks" / "05_prompts.ipynb"

# Known wrong answers, each as a learner would write it: exercise -> {mistake: code}.
WRONG: dict[str, dict[str, str]] = {
    "exercise-1": {
        "numbered from 0": """
            def build_numbered_prompt(question, documents):
                context = "\\n".join(f"[{i}] {doc}" for i, doc in enumerate(documents))
                return "CONTEXT:\\n" + context + "\\n\\nQUESTION:\\n" + question + "\\n\\nANSWER:\\n"
            """,
        "'1.' instead of '[1]'": """
            def build_numbered_prompt(question, documents):
                context = "\\n".join(f"{i}. {doc}" for i, doc in enumerate(documents, start=1))
                return "CONTEXT:\\n" + context + "\\n\\nQUESTION:\\n" + question + "\\n\\nANSWER:\\n"
            """,
        "no newline after ANSWER:": """
            def build_numbered_prompt(question, documents):
                context = "\\n".join(f"[{i}] {doc}" for i, doc in enumerate(documents, start=1))
                return "CONTEXT:\\n" + context + "\\n\\nQUESTION:\\n" + question + "\\n\\nANSWER:"
            """,
    },
    "exercise-2": {
        "the templated text's tokens, nothing subtracted": """
            def template_overhead(tokenizer, text):
                templated = tokenizer.apply_chat_template([{"role": "user", "content": text}],
                                                          tokenize=False, add_generation_prompt=True)
                return len(tokenizer(templated, add_special_tokens=False)["input_ids"])
            """,
        "characters instead of tokens": """
            def template_overhead(tokenizer, text):
                templated = tokenizer.apply_chat_template([{"role": "user", "content": text}],
                                                          tokenize=False, add_generation_prompt=True)
                return len(templated) - len(text)
            """,
        "without the opening of the assistant's turn": """
            def template_overhead(tokenizer, text):
                templated = tokenizer.apply_chat_template([{"role": "user", "content": text}],
                                                          tokenize=False, add_generation_prompt=False)
                n_templated = len(tokenizer(templated, add_special_tokens=False)["input_ids"])
                return n_templated - len(tokenizer(text, add_special_tokens=False)["input_ids"])
            """,
    },
    "exercise-3": {
        "case-sensitive": """
            import re
            def defang(text):
                return re.sub(r"(?m)^(\\s*(?:CONTEXT|QUESTION|ANSWER)\\s*):", r"\\1 -", text)
            """,
        "first line only (no MULTILINE)": """
            import re
            def defang(text):
                return re.sub(r"(?i)^(\\s*(?:context|question|answer)\\s*):", r"\\1 -", text)
            """,
        "every colon": """
            def defang(text):
                return text.replace(":", " -")
            """,
        "anywhere in the line": """
            import re
            def defang(text):
                return re.sub(r"(?i)\\b(context|question|answer)(\\s*):", r"\\1\\2 -", text)
            """,
        "no spaces before the colon": """
            import re
            def defang(text):
                return re.sub(r"(?im)^(\\s*(?:context|question|answer)):", r"\\1 -", text)
            """,
    },
    "exercise-4": {
        "stops at the first document that does not fit (fit_documents)": """
            from rag_helpers.prompts import build_prompt
            def fit_skipping(question, documents, count_tokens, budget):
                kept = []
                for doc in documents:
                    if count_tokens(build_prompt(question, kept + [doc])) > budget:
                        break
                    kept.append(doc)
                if not kept:
                    raise ValueError("nothing fits")
                return kept, build_prompt(question, kept)
            """,
        "counts the documents alone, not the whole prompt": """
            from rag_helpers.prompts import build_prompt
            def fit_skipping(question, documents, count_tokens, budget):
                kept, used = [], 0
                for doc in documents:
                    if used + count_tokens(doc) <= budget:
                        kept.append(doc)
                        used += count_tokens(doc)
                if not kept:
                    raise ValueError("nothing fits")
                return kept, build_prompt(question, kept)
            """,
        "shortest documents first": """
            from rag_helpers.prompts import build_prompt
            def fit_skipping(question, documents, count_tokens, budget):
                kept = []
                for doc in sorted(documents, key=len):
                    if count_tokens(build_prompt(question, kept + [doc])) <= budget:
                        kept.append(doc)
                if not kept:
                    raise ValueError("nothing fits")
                return kept, build_prompt(question, kept)
            """,
        "nothing fits: an empty list instead of an error": """
            from rag_helpers.prompts import build_prompt
            def fit_skipping(question, documents, count_tokens, budget):
                kept = []
                for doc in documents:
                    if count_tokens(build_prompt(question, kept + [doc])) <= budget:
                        kept.append(doc)
                return kept, build_prompt(question, kept)
            """,
    },
}


@pytest.fixture
def run_after(generator):
    """run_after(exercise, code): run `code`, then the exercise's check; returns what it printed."""

    def run(exercise: str, code: str) -> str:
        return selfchecks.run_check(NOTEBOOK, exercise, code, {"np": np, "rh": rh, "generator": generator})

    return run


globals().update(exercise_tests(NOTEBOOK, WRONG))
