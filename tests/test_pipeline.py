"""pipeline.py: RAGPipeline with the real packaged models."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import rag_helpers as rh
from conftest import JUPITER, VENUS


@pytest.fixture(scope="module")
def pipe(encoder, generator):
    return rh.RAGPipeline(rh.SAMPLE_DOCUMENTS, k=2, encoder=encoder, generator=generator, max_new_tokens=24)

def test_pipeline_reproduces_the_original_example(pipe):
    result = pipe.answer(rh.SAMPLE_QUESTION)
    assert [doc for _, doc in result.hits] == [JUPITER, VENUS]
    assert [round(score, 4) for score, _ in result.hits] == [0.7672, 0.5384]
    assert result.prompt == rh.build_prompt(rh.SAMPLE_QUESTION, [JUPITER, VENUS])
    assert "Jupiter" in result.answer

def test_pipeline_retrieval_only_and_k_per_call(pipe):
    result = pipe.answer(rh.SAMPLE_QUESTION, k=4, generate=False)
    assert result.answer is None and len(result.hits) == 4
    assert result.hits[:2] == pipe.retrieve(rh.SAMPLE_QUESTION)
    with pytest.raises(ValueError, match="larger than the number of documents"):
        pipe.retrieve(rh.SAMPLE_QUESTION, k=99)

def test_pipeline_embeds_documents_once_as_unit_rows(pipe):
    assert pipe.doc_embeddings.shape == (len(rh.SAMPLE_DOCUMENTS), 384)
    np.testing.assert_allclose(np.linalg.norm(pipe.doc_embeddings, axis=1), 1, atol=1e-6)

def test_pipeline_trims_the_context_to_the_window_with_a_warning(pipe, monkeypatch):
    gen = pipe.generator
    prompt_one = gen.count_prompt_tokens(rh.build_prompt(rh.SAMPLE_QUESTION, [JUPITER]))
    monkeypatch.setattr(type(gen), "context_window", property(lambda self: prompt_one + 24))
    with pytest.warns(rh.ContextTrimmedWarning, match="only the best 1 of 2"):
        result = pipe.answer(rh.SAMPLE_QUESTION)
    assert result.prompt == rh.build_prompt(rh.SAMPLE_QUESTION, [JUPITER])
    assert len(result.hits) == 2  # what was retrieved is still reported

@pytest.mark.parametrize(
    "documents, k, error",
    [([], 2, ValueError), (["a", 2], 1, TypeError), (["only one"], 2, ValueError), (["a", "b"], "2", TypeError)],
)
def test_pipeline_refuses_bad_input_before_loading_anything(documents, k, error, monkeypatch):
    monkeypatch.setattr(rh.pipeline, "load_encoder", lambda *a: pytest.fail("loaded a model first"))
    with pytest.raises(error):
        rh.RAGPipeline(documents, k=k)

def test_pipeline_can_reuse_cached_document_embeddings(encoder, generator, tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path))
    first = rh.RAGPipeline(rh.SAMPLE_DOCUMENTS, encoder=encoder, generator=generator, cache_embeddings=True)
    assert list((tmp_path / "embeddings").iterdir())
    monkeypatch.setattr("rag_helpers._infra.embedding_cache.embed", lambda *a, **kw: pytest.fail("embedded again"))
    again = rh.RAGPipeline(rh.SAMPLE_DOCUMENTS, encoder=encoder, generator=generator, cache_embeddings=True)
    np.testing.assert_array_equal(again.doc_embeddings, first.doc_embeddings)
    assert again.retrieve(rh.SAMPLE_QUESTION)[0][1].startswith("Jupiter")
