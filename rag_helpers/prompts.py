"""Step 5 of the pipeline: the prompt the generator sees (notebook 05).

Three jobs, in the order notebook 05 teaches them:

* ``build_prompt``: the retrieved documents and the question in the course's
  plain CONTEXT / QUESTION / ANSWER layout;
* ``chat_messages``: that prompt as the one user turn an instruct model's
  chat template expects;
* ``fit_documents``: keep only as many documents (best first) as fit the
  model's context window, given a function that counts tokens.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

from ._infra.validation import check_query_text, check_texts

__all__ = ["build_prompt", "chat_messages", "fit_documents"]


def build_prompt(question: str, documents: Sequence[str]) -> str:
    """The retrieved documents and the question, in the course's exact layout::

        CONTEXT:
        <doc 1>
        <doc 2>

        QUESTION:
        <question>

        ANSWER:

    Documents are used verbatim, one after the other, in the order given
    (best first, as ``retrieve`` returns them).
    """
    question = check_query_text(question, name="question")
    documents = check_texts(documents, name="documents")
    return _layout(question, documents)


def _layout(question: str, documents: Sequence[str]) -> str:
    # The layout alone, for callers that checked their inputs already.
    context = "\n".join(documents)
    return f"CONTEXT:\n{context}\n\nQUESTION:\n{question}\n\nANSWER:\n"


def chat_messages(prompt: str) -> list[dict[str, str]]:
    """The prompt as a chat: one user turn, which ``tokenizer.apply_chat_template`` wraps.

    Instruct models were trained on conversations written in their own
    template (``<|im_start|>user ... <|im_end|>`` for SmolLM2 and LFM2); a bare
    prompt without it reads to them like the middle of a document.
    """
    return [{"role": "user", "content": prompt}]


def fit_documents(
    question: str,
    documents: Sequence[str],
    count_tokens: Callable[[str], int],
    budget: int,
) -> tuple[list[str], str]:
    """The longest prefix of ``documents`` (best first) whose prompt fits in ``budget`` tokens.

    Parameters
    ----------
    question, documents : as for ``build_prompt``, documents best first
    count_tokens : tokens a prompt takes, e.g. ``generator.count_tokens``
        (the chat template included)
    budget : tokens the prompt may use: the context window less the tokens
        kept for the answer

    Returns
    -------
    ``(kept_documents, prompt)``: the prompt is built from the kept documents.
    Least relevant documents are dropped first. All documents are tried
    first, so in the usual case (they fit) the prompt is built and counted
    exactly once.

    Raises ``ValueError`` if not even the best document fits (naming the
    question when it is the question that is too long).
    """
    documents = list(documents)

    def fits(keep: int) -> str | None:
        prompt = _layout(question, documents[:keep])
        return prompt if count_tokens(prompt) <= budget else None

    prompt = fits(len(documents))
    if prompt is not None:
        return documents, prompt
    # The token count grows with every document added, so the longest prefix
    # that fits is found by bisection: a handful of counts even for k = 40.
    best, lo, hi = None, 1, len(documents) - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        candidate = fits(mid)
        if candidate is not None:
            best, lo = (mid, candidate), mid + 1
        else:
            hi = mid - 1
    if best is not None:
        return documents[: best[0]], best[1]
    question_alone = count_tokens(_layout(question, []))
    if question_alone > budget:
        raise ValueError(
            f"the question alone makes a prompt of {question_alone} tokens, more than the "
            f"{budget} the context window leaves for the prompt: ask a shorter question"
        )
    raise ValueError(
        f"even the best document alone does not fit the context window ({budget} tokens left "
        "for the prompt): split the documents into smaller chunks, or leave fewer tokens for the answer"
    )
