"""RAGPipeline end to end and `python -m rag_helpers`, with the real packaged models."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import rag_helpers as rh
from rag_helpers import __main__ as cli

JUPITER = "Jupiter is the largest planet in our solar system."
VENUS = "Venus is the second planet from the Sun and is the hottest."


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


def _run_cli(*args, cwd=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "rag_helpers", *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=300,
    )


def test_cli_prints_what_the_original_script_printed():
    done = _run_cli("which planet is the biggest?", "--max-new-tokens", "24")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("Using device: cpu\n")
    assert (
        "--- Retrieved Documents (Top 2) ---\n"
        f"Score: 0.7672 | Document: {JUPITER}\n"
        f"Score: 0.5384 | Document: {VENUS}\n"
    ) in out
    assert "--- Prompt Sent to LLM ---\n" + rh.build_prompt(rh.SAMPLE_QUESTION, [JUPITER, VENUS]) in out
    answer = out.split("--- Final Answer from LLM ---\n", 1)[1]
    assert "Jupiter" in answer
    # The offline fallback is said once, in one line, on stderr.
    fallback_lines = [line for line in done.stderr.splitlines() if "OfflineFallbackWarning" in line]
    assert len(fallback_lines) == 1 and "SmolLM2" in fallback_lines[0]


def test_cli_reads_documents_from_a_file(tmp_path, capsys, generator):
    docs = tmp_path / "docs.txt"
    docs.write_text("Bananas are yellow.\n\nThe Nile is a long river in Africa.\nParis is in France.\n")
    code = cli.main(["Which river is in Africa?", "-k", "1", "--docs", str(docs), "--max-new-tokens", "8",
                     "--generator-model", rh.PACKAGED_GENERATOR, "--no-stream"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Top 1" in out and "Document: The Nile is a long river in Africa." in out
    assert "OfflineFallbackWarning" not in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["-k", "0"], "k must be at least 1"),
        (["-k", "50"], "k=50 is larger than the number of documents (10)"),
        (["   "], "query is empty"),
        (["--docs", "/no/such/file.txt"], "cannot read --docs file"),
        (["--generator-model", "no-such-org/no-such-model"], "could not load generator 'no-such-org/no-such-model'"),
    ],
)
def test_cli_bad_input_is_one_clear_error(args, message, capsys):
    try:
        code = cli.main(args)
    except SystemExit as exit_:  # argparse-style exits carry their message
        code, err = 2, str(exit_.code)
    else:
        err = capsys.readouterr().err
    assert code == 2
    assert message in err


def test_pipeline_can_reuse_cached_document_embeddings(encoder, generator, tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path))
    first = rh.RAGPipeline(rh.SAMPLE_DOCUMENTS, encoder=encoder, generator=generator, cache_embeddings=True)
    assert list((tmp_path / "embeddings").iterdir())
    monkeypatch.setattr("rag_helpers._infra.embedding_cache.embed", lambda *a, **kw: pytest.fail("embedded again"))
    again = rh.RAGPipeline(rh.SAMPLE_DOCUMENTS, encoder=encoder, generator=generator, cache_embeddings=True)
    np.testing.assert_array_equal(again.doc_embeddings, first.doc_embeddings)
    assert again.retrieve(rh.SAMPLE_QUESTION)[0][1].startswith("Jupiter")
