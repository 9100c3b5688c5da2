# Generated from notebooks/05_prompts.ipynb by tools/nbexport.py: edit the notebook, not this file.
# Each block below is one `#| export` cell of the notebook, verbatim, in order.

"""Step 5 of the pipeline: the prompt the generator reads (notebook 05).

The retrieved documents and the question become one text, in the course's
CONTEXT / QUESTION / ANSWER layout; the chat template wraps that text as the
one user turn of a conversation; and only as many documents (best first) are
kept as fit the model's context window, counted in tokens.
"""
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for the type hints only: importing transformers takes seconds
    from transformers import PreTrainedTokenizerBase


def build_prompt(question: str, documents: Sequence[str]) -> str:
    """The documents (best first, one per line) and the question, in the course's layout::

        CONTEXT:
        <document 1>
        <document 2>

        QUESTION:
        <question>

        ANSWER:

    The model continues the text it is given, and the natural continuation of
    an empty answer section is an answer; the question comes last, right
    before it, so it is the last thing the model reads.
    """
    context = "\n".join(documents)  # one document per line, best first
    return "CONTEXT:\n" + context + "\n\nQUESTION:\n" + question + "\n\nANSWER:\n"


def chat_messages(prompt: str) -> list[dict[str, str]]:
    """The prompt as a chat: one user turn, which ``tokenizer.apply_chat_template`` wraps.

    Instruct models were trained on conversations written in their own
    template (``<|im_start|>user ... <|im_end|>`` for SmolLM2); a bare prompt
    without it reads to them like the middle of a document.
    """
    return [{"role": "user", "content": prompt}]


def count_templated_tokens(tokenizer: "PreTrainedTokenizerBase", prompt: str) -> int:
    """How many tokens the model reads for ``prompt``: the chat template's tokens included."""
    templated = tokenizer.apply_chat_template(chat_messages(prompt), tokenize=False, add_generation_prompt=True)
    # The template wrote the special tokens as text already: don't add them twice.
    return len(tokenizer(templated, add_special_tokens=False)["input_ids"])


def fit_documents(
    question: str, documents: Sequence[str], count_tokens: Callable[[str], int], budget: int
) -> tuple[list[str], str]:
    """The longest prefix of ``documents`` (best first) whose prompt fits in ``budget`` tokens.

    ``count_tokens(prompt)`` counts a prompt's tokens, chat template included
    (``generator.count_tokens``, or ``count_templated_tokens`` with a tokenizer);
    ``budget`` is the context window less the tokens kept for the answer.
    Returns ``(kept_documents, prompt)``: the least relevant documents are the
    ones left out. Raises ``ValueError`` when not even the best one fits.
    """
    for keep in range(len(documents), 0, -1):  # all of them first: the usual case, one count
        prompt = build_prompt(question, documents[:keep])
        if count_tokens(prompt) <= budget:
            return list(documents[:keep]), prompt
    raise ValueError(f"even the best document alone makes a prompt of more than {budget} tokens: "
                     "split the documents into smaller chunks, or keep fewer tokens for the answer")
