"""Checking an answer against its context, and prompts that fit despite a hit too long for the window.

- `keep_supported` drops (or only lists) the sentences no context sentence supports, with the real encoder;
- `RAGPipeline(unsupported=...)` applies it to generated answers (the seed answer: nothing to drop);
- a retrieved chunk too long for the window on its own is left out, not allowed to block the others;
- a question too long for the window is blamed as the question, by `generate_real_answer` too.
"""
from __future__ import annotations

import pytest

import rag_helpers as rh
from rag_helpers.engine.grounding import UNSUPPORTED_ANSWER, keep_supported

CONTEXT = ["Jupiter is the largest planet in our solar system.",
           "Venus is the second planet from the Sun and is the hottest."]


@pytest.fixture(scope="module")
def encoder():
    return rh.load_encoder()


@pytest.fixture(scope="module")
def generator():
    return rh.load_generator(rh.PACKAGED_GENERATOR)


def test_a_copied_sentence_is_kept_and_an_invented_one_dropped(encoder):
    answer = "Jupiter is the largest planet in the solar system. Its capital city is Paris, founded in 1850."
    checked = keep_supported(answer, CONTEXT, encoder)
    assert checked.answer == "Jupiter is the largest planet in the solar system."
    assert checked.unsupported == ["Its capital city is Paris, founded in 1850."]
    flagged = keep_supported(answer, CONTEXT, encoder, drop=False)
    assert flagged.answer == answer and flagged.unsupported == checked.unsupported


def test_nothing_supported_becomes_i_dont_know(encoder):
    checked = keep_supported("Bananas grow in Ecuador.", CONTEXT, encoder)
    assert checked.answer == UNSUPPORTED_ANSWER and "I don't know" in checked.answer
    assert keep_supported("", CONTEXT, encoder) == ("", [])
    with pytest.raises(TypeError, match="answer must be a str"):
        keep_supported(None, CONTEXT, encoder)


@pytest.mark.parametrize("mode", ["keep", "flag", "drop"])
def test_the_pipeline_checks_what_the_model_wrote(mode, encoder, generator):
    pipe = rh.RAGPipeline(CONTEXT, k=2, encoder=encoder, generator=generator, unsupported=mode)
    res = pipe.answer("which planet is the biggest?", max_new_tokens=24)
    assert "Jupiter" in res.answer
    # The offline model's seed answer copies the context: nothing to flag or drop.
    assert res.unsupported == [] and res.answer == "The largest planet in our solar system is Jupiter."


def test_an_unknown_mode_is_refused(encoder):
    with pytest.raises(ValueError, match="unsupported must be one of"):
        rh.RAGPipeline(CONTEXT, encoder=encoder, unsupported="hide")


def test_a_hit_too_long_for_the_window_does_not_block_the_others(encoder, generator):
    giant = "a" * 200_000  # one unbroken run: a single document far past SmolLM2's window
    docs = [giant, *CONTEXT]
    pipe = rh.RAGPipeline(docs, k=3, encoder=encoder, generator=generator)
    question = "a" * 60  # ranks the giant first
    with pytest.warns(rh.ContextTrimmedWarning, match="too long"):
        res = pipe.prepare(question, max_new_tokens=16)  # fits the prompt to the window, does not generate
    assert res.hits[0].document == giant
    assert giant not in res.context and res.context and set(res.context) <= set(CONTEXT)


def test_a_question_too_long_is_blamed_as_the_question(generator):
    question = "why " * (generator.context_window + 10)
    with pytest.raises(ValueError, match="the question alone"):
        rh.generate_real_answer(question, CONTEXT, generator, max_new_tokens=16)


def test_extract_answers_with_the_documents_own_sentences_and_no_model(encoder):
    pipe = rh.RAGPipeline(rh.SAMPLE_DOCUMENTS, k=2, encoder=encoder, min_score="auto")
    res = pipe.extract("which planet is the biggest?", n_sentences=1)
    assert res.answer == "Jupiter is the largest planet in our solar system." and res.prompt is None
    assert not res.abstained and res.context == [h.document for h in res.hits]
    refused = pipe.extract("Who won the 2018 FIFA World Cup?")
    assert refused.abstained and "I don't know" in refused.answer
    assert not pipe.generator_loaded
    with pytest.raises(ValueError, match="n_sentences"):
        pipe.extract("which planet is the biggest?", n_sentences=0)
