"""The whole pipeline in one object: embed, normalize, score, top-k, prompt, generate."""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from sentence_transformers import SentenceTransformer

from ._infra.embedding_cache import embed_cached
from .embeddings import embed, load_encoder
from .generation import (
    DEFAULT_MAX_NEW_TOKENS,
    Generator,
    fit_documents,
    generate_real_answer,
    load_generator,
)
from .prompts import build_prompt
from .retrieval import retrieve_with_numpy
from ._infra.validation import check_k, check_texts

__all__ = ["RAGPipeline", "RAGResult", "ContextTrimmedWarning"]


class ContextTrimmedWarning(UserWarning):
    """Some retrieved documents were left out of the prompt to fit the context window."""


@dataclass
class RAGResult:
    """What one question went through: the hits, the prompt, and the answer."""

    question: str
    hits: list[tuple[float, str]]  # (score, document), best first
    prompt: str
    answer: str | None  # None when generation was not asked for


class RAGPipeline:
    """Retrieval-augmented generation over a list of documents.

    >>> pipe = RAGPipeline(SAMPLE_DOCUMENTS, k=2)          # doctest: +SKIP
    >>> res = pipe.answer("which planet is the biggest?")  # doctest: +SKIP
    >>> res.hits[0]                                        # doctest: +SKIP
    (0.7672..., 'Jupiter is the largest planet in our solar system.')

    The documents are embedded once, here (``cache_embeddings=True`` keeps
    them on disk for the next pipeline over the same documents and model). The generator is loaded on the
    first ``answer`` (retrieval alone never pays for it) unless one is given.
    """

    def __init__(
        self,
        documents: Sequence[str],
        k: int = 2,
        *,
        encoder: SentenceTransformer | None = None,
        generator: Generator | None = None,
        embedding_model: str | None = None,
        generator_model: str | None = None,
        device: str | None = None,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        cache_embeddings: bool = False,
    ) -> None:
        self.documents = check_texts(documents)
        self.k = check_k(k, len(self.documents))
        self.encoder = encoder if encoder is not None else load_encoder(embedding_model, device)
        # Opt-in: the cache writes a file under the user cache folder, and a
        # rebuilt pipeline over the same documents then skips the encoder.
        embed_documents = embed_cached if cache_embeddings else embed
        self.doc_embeddings = embed_documents(self.documents, self.encoder)  # (n_docs, dim) float32
        self._generator = generator
        self._generator_model = generator_model
        self._device = device
        self.max_new_tokens = max_new_tokens

    @property
    def generator(self) -> Generator:
        """The language model, loaded on first use."""
        if self._generator is None:
            self._generator = load_generator(self._generator_model, self._device)
        return self._generator

    def retrieve(self, question: str, k: int | None = None) -> list[tuple[float, str]]:
        """The ``k`` (default: the pipeline's) best documents as ``(score, document)``, best first."""
        k = self.k if k is None else k
        return retrieve_with_numpy(question, self.documents, self.doc_embeddings, self.encoder, k=k)

    def answer(
        self,
        question: str,
        k: int | None = None,
        *,
        generate: bool = True,
        max_new_tokens: int | None = None,
        **generation_options,
    ) -> RAGResult:
        """Retrieve, build the prompt and (unless ``generate=False``) generate the answer.

        Documents that would overflow the generator's context window are left
        out, least relevant first, with a ``ContextTrimmedWarning``.
        ``generation_options`` go to ``generate_real_answer`` (``do_sample``,
        ``stream``, ...).
        """
        hits = self.retrieve(question, k)
        documents = [doc for _, doc in hits]
        if not generate:
            return RAGResult(question, hits, build_prompt(question, documents), None)
        max_new_tokens = self.max_new_tokens if max_new_tokens is None else max_new_tokens
        kept = fit_documents(question, documents, self.generator, max_new_tokens)
        if len(kept) < len(documents):
            warnings.warn(
                f"only the best {len(kept)} of {len(documents)} retrieved documents fit "
                f"{self.generator.display_name}'s context window; the rest were left out of the prompt",
                ContextTrimmedWarning,
                stacklevel=2,
            )
        answer = generate_real_answer(
            question, kept, self.generator, max_new_tokens, **generation_options
        )
        return RAGResult(question, hits, build_prompt(question, kept), answer)
