"""Step 5 of the pipeline: the prompt the generator sees."""
from __future__ import annotations

from collections.abc import Sequence

from ._infra.validation import check_query_text, check_texts

__all__ = ["build_prompt"]


def build_prompt(question: str, documents: Sequence[str]) -> str:
    """The retrieved documents and the question, in the course's exact layout::

        CONTEXT:
        <doc 1>
        <doc 2>

        QUESTION:
        <question>

        ANSWER:

    Documents are used verbatim, one after the other, in the order given
    (best first, as ``retrieve_with_numpy`` returns them).
    """
    question = check_query_text(question, name="question")
    documents = check_texts(documents, name="documents")
    context = "\n".join(documents)
    return f"CONTEXT:\n{context}\n\nQUESTION:\n{question}\n\nANSWER:\n"
