"""Keep only what the documents support: check each answer sentence against the context (notebook 11).

A small model copies, paraphrases, and invents, sometimes in the same answer. Notebook 11's
``sentence_support`` gives each answer sentence its best cosine similarity to any sentence of the
context; a sentence below ``SUPPORT_THRESHOLD`` is one that nothing in the documents says.
``keep_supported`` removes those sentences (or, with ``drop=False``, only lists them), so what is
left is what the documents back; when nothing is left, the answer becomes "I don't know".

The same measure decides what is dropped and scores groundedness, so an answer cleaned this way is
fully grounded *by that measure*; token precision against the context (``context_precision``) is
the independent check, reported next to it in ``benchmarks/ANSWERS.md``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from .. import answers as taught
from .._infra.validation import check_texts

__all__ = ["Checked", "keep_supported", "UNSUPPORTED_ANSWER"]

#: The answer when no sentence of the generated one is supported by the documents.
UNSUPPORTED_ANSWER = "I don't know: nothing in the documents supports an answer."


class Checked(NamedTuple):
    """An answer after the check: the text kept, and the sentences nothing in the documents supports."""

    answer: str
    unsupported: list[str]


def keep_supported(answer: str, documents: Sequence[str], encoder, *, drop: bool = True,
                   threshold: float | None = None) -> Checked:
    """``answer`` without the sentences that no sentence of ``documents`` supports.

    threshold : cosine similarity a sentence needs (default ``answers.SUPPORT_THRESHOLD``).
    drop : False keeps the answer whole and only reports the unsupported sentences.
    """
    if not isinstance(answer, str):
        raise TypeError(f"answer must be a str, got {type(answer).__name__}")
    documents = check_texts(documents, name="documents")
    threshold = taught.SUPPORT_THRESHOLD if threshold is None else float(threshold)
    sentences = taught.split_sentences(answer)
    if not sentences:
        return Checked(answer, [])
    support = taught.sentence_support(answer, documents, encoder)  # (n_sentences,) float32
    kept = [s for s, v in zip(sentences, support.tolist()) if v >= threshold]
    unsupported = [s for s, v in zip(sentences, support.tolist()) if v < threshold]
    if not drop or not unsupported:
        return Checked(answer, unsupported)
    return Checked(" ".join(kept) if kept else UNSUPPORTED_ANSWER, unsupported)
