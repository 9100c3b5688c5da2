"""Step 5 of the pipeline, hardened: ``rh.build_prompt`` (notebook 05 teaches the layout).

The layout is the course module's (``rag_helpers/prompts.py``, written from
notebook 05's cells): ``prompts.build_prompt`` pastes the documents and the
question into CONTEXT / QUESTION / ANSWER. What this module adds:

* argument checks with clear errors (a non-string, an empty or invisible-only
  document, a lone surrogate), naming the bad document;
* retrieved text is untrusted: every document and the question go through
  ``injection.neutralize``, so that none of them can forge a section header or
  a chat-template control token, and each multi-line document stays one block
  (its lines after the first are indented). An ordinary one-line document
  comes out exactly as it went in, so on such documents ``build_prompt`` gives
  the taught function's text, character for character (tested);
* the ``style`` variants ("cite", "idk") and ``fit_documents`` by bisection,
  which keeps what the taught loop keeps with a handful of token counts.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

from .. import prompts as taught
from .._infra.validation import check_text, check_texts
from ..prompts import chat_messages
from .injection import neutralize

__all__ = ["build_prompt", "chat_messages", "fit_documents", "question_tokens", "undefended_prompt", "PROMPT_STYLES"]

#: What each style adds before the CONTEXT / QUESTION / ANSWER sections.
#: "plain" is the course's seed layout; "cite" numbers the documents.
PROMPT_STYLES: dict[str, str] = {
    "plain": "",
    "cite": (
        "Answer the question using the numbered documents in the context. "
        "After each fact you use, cite the number of its document in square brackets, like [1].\n\n"
    ),
    "idk": (
        "Answer the question using only the context. "
        "If the context does not contain the answer, answer \"I don't know\".\n\n"
    ),
}

# Lines after the first of a multi-line document (or question) start with
# this, so every line at the left margin of the context starts a document:
# one document can never pass for two.
CONTINUATION_INDENT = "  "


def build_prompt(question: str, documents: Sequence[str], style: str = "plain") -> str:
    """The retrieved documents and the question, in the course's layout::

        CONTEXT:
        <doc 1>
        <doc 2>

        QUESTION:
        <question>

        ANSWER:

    Documents come in the order given (best first, as ``retrieve`` returns
    them), one per line. Each goes through ``injection.neutralize``: an
    ordinary sentence is pasted as it is, while a forged header loses its
    colon (``ANSWER: x`` -> ``ANSWER - x``) and a control token is escaped
    (``<|im_start|>`` -> ``&lt;|im_start|&gt;``); the lines after the first of
    a multi-line document are indented by two spaces.

    ``style``: "plain" (the layout above), "cite" (documents numbered
    ``[1]``, ``[2]``, ... and the model asked to cite them) or "idk" (the
    model told to answer "I don't know" when the context lacks the answer).
    The two variants put one sentence of instructions before ``CONTEXT:``.
    """
    question_text, blocks = _neutralized(question, documents)
    return _layout(question_text, blocks, style)


def undefended_prompt(question: str, documents: Sequence[str]) -> str:
    """The seed layout with the documents and question pasted verbatim: no defence at all.

    For demonstrations and ``benchmarks/injection.py`` only: this is what
    prompt injection exploits. Use ``build_prompt``.
    """
    question = check_text(question, name="question")
    documents = check_texts(documents, name="documents")
    return taught.build_prompt(question, documents)


def _neutralized(question: str, documents: Sequence[str]) -> tuple[str, list[str]]:
    # Checks first (clear errors naming the bad document), then the defences.
    check_text(question, name="question")
    documents = check_texts(documents, name="documents")
    question_text = neutralize(question, name="question")
    blocks = [neutralize(doc, name=f"documents[{i}]") for i, doc in enumerate(documents)]
    return question_text, blocks


def _block(text: str) -> str:
    # A neutralized text has only "\n" line breaks and no leading or trailing whitespace.
    return text.replace("\n", "\n" + CONTINUATION_INDENT)


def _layout(question: str, documents: Sequence[str], style: str = "plain") -> str:
    # The layout alone, for callers that neutralized their inputs already.
    try:
        instructions = PROMPT_STYLES[style]
    except (KeyError, TypeError):
        raise ValueError(f"style must be one of {sorted(PROMPT_STYLES)}, got {style!r}") from None
    if style == "cite":
        lines = [f"[{i}] {_block(doc)}" for i, doc in enumerate(documents, start=1)]
    else:
        lines = [_block(doc) for doc in documents]
    return instructions + taught.build_prompt(_block(question), lines)


def question_tokens(question: str, count_tokens: Callable[[str], int], style: str = "plain") -> int:
    """Tokens of the prompt with no document at all: what the question alone costs."""
    question_text, _ = _neutralized(question, ["-"])
    return count_tokens(_layout(question_text, [], style))


def fit_documents(
    question: str,
    documents: Sequence[str],
    count_tokens: Callable[[str], int],
    budget: int,
    style: str = "plain",
) -> tuple[list[str], str]:
    """The longest prefix of ``documents`` (best first) whose prompt fits in ``budget`` tokens.

    What ``prompts.fit_documents`` (notebook 05) keeps, found by bisection
    instead of one document at a time, with checks, the defences of
    ``build_prompt`` and its ``style``, and an error that says whether the
    question alone is too long.

    Parameters
    ----------
    question, documents, style : as for ``build_prompt``, documents best first
    count_tokens : tokens a prompt takes, e.g. ``generator.count_tokens``
        (the chat template included)
    budget : tokens the prompt may use: the context window less the tokens
        kept for the answer

    Returns
    -------
    ``(kept_documents, prompt)``: the kept documents as given, and the
    prompt ``build_prompt`` makes from them. Least relevant documents are
    dropped first. All documents are tried first, so in the usual case (they
    fit) the prompt is built and counted exactly once.

    Raises ``ValueError`` if not even the best document fits (naming the
    question when it is the question that is too long).
    """
    question_text, blocks = _neutralized(question, documents)
    documents = list(documents)

    def fits(keep: int) -> str | None:
        prompt = _layout(question_text, blocks[:keep], style)
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
    question_alone = question_tokens(question, count_tokens, style)
    if question_alone > budget:
        raise ValueError(
            f"the question alone makes a prompt of {question_alone} tokens, more than the "
            f"{budget} the context window leaves for the prompt: ask a shorter question"
        )
    raise ValueError(
        f"even the best document alone does not fit the context window ({budget} tokens left "
        "for the prompt): split the documents into smaller chunks, or leave fewer tokens for the answer"
    )
