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
    prompt_one = gen.count_tokens(rh.build_prompt(rh.SAMPLE_QUESTION, [JUPITER]))
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
    monkeypatch.setattr(rh.engine.pipeline, "load_encoder", lambda *a: pytest.fail("loaded a model first"))
    with pytest.raises(error):
        rh.RAGPipeline(documents, k=k)

def test_pipeline_can_reuse_cached_document_embeddings(encoder, generator, tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path))
    first = rh.RAGPipeline(rh.SAMPLE_DOCUMENTS, encoder=encoder, generator=generator, cache_embeddings=True)
    assert list((tmp_path / "embeddings").iterdir())
    monkeypatch.setattr("rag_helpers.engine.embedding_cache.embed", lambda *a, **kw: pytest.fail("embedded again"))
    again = rh.RAGPipeline(rh.SAMPLE_DOCUMENTS, encoder=encoder, generator=generator, cache_embeddings=True)
    np.testing.assert_array_equal(again.doc_embeddings, first.doc_embeddings)
    assert again.retrieve(rh.SAMPLE_QUESTION)[0][1].startswith("Jupiter")


# ---------------------------------------------------------------- the taught assembly (notebook 07)

QUESTIONS = [rh.SAMPLE_QUESTION, "Which planet is the hottest?", "Who created Python?",
             "What is the tallest mountain?", "Where is the Great Barrier Reef?"]


@pytest.mark.parametrize("question", QUESTIONS)
@pytest.mark.parametrize("k", [1, 2, 4, 10])
def test_the_pipeline_gives_the_taught_assembly_s_hits_and_prompt(pipe, encoder, question, k):
    # rag_helpers/pipeline.py is notebook 07's `#| export` cells: embed, cosine_scores, top_k,
    # build_prompt. RAGPipeline searches through engine/retrieval.search (blocked): same documents
    # in the same order, scores to float32 tolerance, the same prompt.
    from rag_helpers import pipeline as taught

    doc_vecs = taught.embed(rh.SAMPLE_DOCUMENTS, encoder)
    hits = taught.retrieve(question, rh.SAMPLE_DOCUMENTS, doc_vecs, encoder, k)
    prepared = pipe.prepare(question, k, fit=False)
    assert [hit.document for hit in prepared.hits] == [doc for _, doc in hits]
    np.testing.assert_allclose([hit.score for hit in prepared.hits], [s for s, _ in hits], atol=1e-6)
    assert prepared.prompt == taught.build_prompt(question, [doc for _, doc in hits])


def test_the_taught_answer_is_the_pipeline_s_answer(pipe, encoder, generator):
    from rag_helpers import pipeline as taught

    doc_vecs = taught.embed(rh.SAMPLE_DOCUMENTS, encoder)
    hits, prompt, answer = taught.answer(rh.SAMPLE_QUESTION, rh.SAMPLE_DOCUMENTS, doc_vecs, encoder, generator,
                                         k=2, max_new_tokens=24)
    result = pipe.answer(rh.SAMPLE_QUESTION)
    assert [doc for _, doc in hits] == [JUPITER, VENUS] and prompt == result.prompt
    assert answer == result.answer and "Jupiter" in answer


def test_retrieval_goes_through_the_checked_search(pipe, monkeypatch):
    # The pipeline is an assembler: it searches with engine/retrieval.search, not a kernel of its own.
    calls = []
    real = rh.engine.pipeline.search
    monkeypatch.setattr(rh.engine.pipeline, "search", lambda *a, **kw: calls.append(a) or real(*a, **kw))
    pipe.retrieve(rh.SAMPLE_QUESTION)
    assert len(calls) == 1 and calls[0][0].shape == (384,)


def test_generate_real_answer_is_build_prompt_then_generate(generator):
    from rag_helpers.engine import pipeline

    assert rh.generate_real_answer is pipeline.generate_real_answer
    direct = generator.generate(rh.build_prompt(rh.SAMPLE_QUESTION, [JUPITER]), 12)
    assert rh.generate_real_answer(rh.SAMPLE_QUESTION, [JUPITER], generator, max_new_tokens=12) == direct


def test_streaming_reads_generator_stream(pipe, monkeypatch):
    # One streaming loop: Generator.stream. The pipeline only collects its pieces.
    def fake_stream(self, prompt, n, **kw):  # a generator, as Generator.stream is (the pipeline closes it)
        yield from ["Jup", "iter "]

    monkeypatch.setattr(type(pipe.generator), "stream", fake_stream)
    pieces = []
    result = pipe.answer(rh.SAMPLE_QUESTION, stream=pieces.append)
    assert pieces == ["Jup", "iter "] and result.answer == "Jupiter"


def test_the_generator_is_loaded_only_when_needed(encoder, monkeypatch):
    lazy = rh.RAGPipeline(rh.SAMPLE_DOCUMENTS, k=2, encoder=encoder, min_score=0.99)
    lazy.retrieve(rh.SAMPLE_QUESTION)
    result = lazy.answer(rh.SAMPLE_QUESTION)   # abstains: below min_score
    assert result.abstained and not lazy.generator_loaded
    monkeypatch.setattr(rh.engine.pipeline, "load_generator", lambda *a: "a generator")
    assert lazy.generator == "a generator" and lazy.generator_loaded


def test_from_files_takes_document_like_objects(encoder):
    # Notebook 08 defines its own Document class in its cells; the pipeline takes those too.
    from dataclasses import dataclass

    @dataclass
    class NotebookDocument:
        text: str
        source: str
        page: int | None = None

    pipe = rh.RAGPipeline.from_files([NotebookDocument(f"{JUPITER}\n{VENUS}\n", "planets.txt")],
                                     chunk_tokens=16, overlap=0, k=1, encoder=encoder)
    assert [hit.location for hit in pipe.retrieve(rh.SAMPLE_QUESTION)] == ["planets.txt:1"]


def test_from_corpus_and_read_lines(tmp_path, encoder, monkeypatch):
    from rag_helpers.engine import pipeline

    with pytest.raises(ValueError, match="unknown corpus 'nope'"):
        rh.RAGPipeline.from_corpus("nope")
    seen = {}
    monkeypatch.setattr(rh.RAGPipeline, "from_files",
                        classmethod(lambda cls, docs, **kw: seen.update(docs=docs, **kw) or "a pipeline"))
    assert rh.RAGPipeline.from_corpus("python-docs", k=3) == "a pipeline"
    assert len(seen["docs"]) == 27 and seen["k"] == 3
    lines = tmp_path / "facts.txt"
    lines.write_text("\ufeff first fact \n\n \u200b\nsecond fact\n", encoding="utf-8")   # BOM, blank lines dropped
    assert pipeline.read_lines(lines) == ["first fact", "second fact"]
