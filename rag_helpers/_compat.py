"""Functions kept for code written against rag_helpers 0.1, before the one-module-per-notebook layout."""
from __future__ import annotations

from collections.abc import Iterator, Sequence

from .generation import DEFAULT_MAX_NEW_TOKENS, Generator
from .prompts import build_prompt
from .prompts import fit_documents as _fit

__all__ = ["stream_answer", "fit_documents"]


def stream_answer(
    question: str, documents: Sequence[str], generator: Generator,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, **sampling,
) -> Iterator[str]:
    """Old name: ``generator.stream(build_prompt(question, documents), ...)``."""
    return generator.stream(build_prompt(question, documents), max_new_tokens, **sampling)


def fit_documents(
    question: str, documents: Sequence[str], generator: Generator, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
) -> list[str]:
    """Old signature: ``prompts.fit_documents(question, documents, generator.count_tokens, budget)[0]``."""
    build_prompt(question, documents)  # the checks
    budget = generator.context_window - max_new_tokens
    return _fit(question, documents, generator.count_tokens, budget)[0]
