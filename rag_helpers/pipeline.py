# Generated from notebooks/07_full_pipeline.ipynb by tools/nbexport.py: edit the notebook, not this file.
# Each block below is one `#| export` cell of the notebook, verbatim, in order.

"""Notebook 07: the six steps of retrieval-augmented generation, chained.

    question --embed--> (dim,) unit vector --cosine_scores--> (n_docs,) --top_k--> k documents
             --build_prompt--> CONTEXT / QUESTION / ANSWER --generator.generate--> answer

Steps 1 to 5 are the course modules of notebooks 01 to 05, step 6 the
generator of notebook 06 (``rag_helpers.load_generator()``): this module only
chains them. ``rag_helpers.RAGPipeline`` does the same with its extras: the
document vectors kept in one object, a prompt trimmed to fit the model's
window, streaming, "I don't know" below a score, documents from files.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rag_helpers.embeddings import embed        # 01 (and 02): texts -> unit rows
from rag_helpers.scoring import cosine_scores   # 03: one matrix-vector product
from rag_helpers.topk import top_k              # 04: the k best, best first
from rag_helpers.prompts import build_prompt    # 05: the CONTEXT / QUESTION / ANSWER text


def retrieve(question: str, documents: Sequence[str], doc_vecs: np.ndarray, encoder,
             k: int = 2) -> list[tuple[float, str]]:
    """The ``k`` documents most similar to ``question``: ``[(score, document), ...]``, best first.

    doc_vecs: (n_docs, dim) float32 unit rows, ``embed(documents, encoder)``, row i for documents[i].
    """
    query_vec = embed([question], encoder)[0]    # (dim,) float32, unit length
    scores = cosine_scores(query_vec, doc_vecs)   # (n_docs,) float32 cosine similarities
    best = top_k(scores, k)                       # (k,) indices, best first, ties in index order
    return [(float(scores[i]), documents[i]) for i in best]


def answer(question: str, documents: Sequence[str], doc_vecs: np.ndarray, encoder, generator,
           k: int = 2, max_new_tokens: int = 128) -> tuple[list[tuple[float, str]], str, str]:
    """Retrieve, build the prompt, generate: ``(hits, prompt, answer)``.

    generator: a loaded language model (``rag_helpers.load_generator()``); its
    ``generate(prompt, max_new_tokens)`` decodes greedily, so the answer is the same on every run.
    """
    hits = retrieve(question, documents, doc_vecs, encoder, k)
    prompt = build_prompt(question, [document for _, document in hits])
    return hits, prompt, generator.generate(prompt, max_new_tokens)
