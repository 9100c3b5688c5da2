"""Saying "I don't know": the threshold's error rates, the rule that picks it, and the pipeline using it.

By hand and by properties first (the rule is a brute-force minimum, so a slow
reference is easy to write), then on the real thing: the Python-docs corpus
with the packaged encoder, where recomputing the dev-half choice must give
``DEFAULT_MIN_SCORE``, and a pipeline with ``min_score`` must refuse an
off-topic question without ever touching its generator.

The corpus embeddings (1,861 chunks) are cached in the user cache: the first
run on a machine embeds them (a few minutes on a 2-core CPU), later runs load them.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import rag_helpers as rh
from rag_helpers.engine.abstention import (
    DEFAULT_MIN_SCORE,
    best_scores,
    candidate_thresholds,
    choose_threshold,
    error_rates,
    threshold_tradeoff,
)
from rag_helpers.engine.corpus import load_labelled_questions, load_python_docs, load_unanswerable_questions
from rag_helpers.engine.pipeline import ABSTAIN_ANSWER

OFF_TOPIC = "How do I fold a fitted sheet?"  # one of the unanswerable "off-topic" questions


# ------------------------------------------------------------------ by hand

def test_error_rates_by_hand_and_the_boundary_is_answered():
    answerable, unanswerable = np.array([0.5, 0.7, 0.9]), np.array([0.1, 0.6])
    # t = 0.6: 0.5 is refused (1 of 3); 0.6 equals t, so it is answered (1 of 2), as in RAGPipeline.
    assert error_rates(answerable, unanswerable, 0.6) == (1 / 3, 1 / 2)
    assert error_rates(answerable, unanswerable, 0.0) == (0.0, 1.0)  # answers everything
    assert error_rates(answerable, unanswerable, 1.0) == (1.0, 0.0)  # refuses everything


def test_candidates_lie_halfway_between_consecutive_scores():
    t = candidate_thresholds(np.array([0.5, 0.7, 0.7]), np.array([0.1]))
    np.testing.assert_allclose(t, [0.05, 0.3, 0.6, 0.75])  # one beyond each end, duplicates counted once


def test_the_default_rule_minimises_the_sum():
    answerable = np.array([0.40, 0.55, 0.60, 0.70, 0.80])
    unanswerable = np.array([0.20, 0.30, 0.50])
    # Between 0.50 and 0.55 nothing is wrong: the midpoint, 0.525, is chosen.
    assert choose_threshold(answerable, unanswerable) == pytest.approx(0.525)
    assert error_rates(answerable, unanswerable, 0.525) == (0.2, 0.0)


def test_ties_go_to_the_lowest_threshold():
    # At 0.35 (between 0.3 and 0.4) the sum is 0 + 1/2; at 0.55 it is 1/2 + 0: a tie, the lower wins.
    answerable, unanswerable = np.array([0.4, 0.6]), np.array([0.3, 0.5])
    assert choose_threshold(answerable, unanswerable) == pytest.approx(0.35)


def test_the_cap_rule_refuses_at_most_the_cap():
    answerable = np.array([0.30, 0.45, 0.60, 0.70, 0.80])
    unanswerable = np.array([0.20, 0.40, 0.50, 0.65])
    free = choose_threshold(answerable, unanswerable)
    capped = choose_threshold(answerable, unanswerable, max_wrongly_refused=0.0)
    assert capped == pytest.approx(0.25)  # refuses no answerable question: only 0.20 goes
    assert error_rates(answerable, unanswerable, capped) == (0.0, 0.75)
    assert free > capped
    with pytest.raises(ValueError, match="max_wrongly_refused"):
        choose_threshold(answerable, unanswerable, max_wrongly_refused=1.5)
    with pytest.raises(ValueError, match="no threshold refuses at most"):
        choose_threshold(answerable, unanswerable, max_wrongly_refused=0.0, thresholds=[0.5, 0.9])


@pytest.mark.parametrize(("answerable", "unanswerable", "match"), [
    ([], [0.1], "non-empty"),
    ([[0.1, 0.2]], [0.1], "non-empty"),
    ([0.1, float("nan")], [0.1], r"best_answerable\[1\] is nan"),
    ([0.1], [float("inf")], r"best_unanswerable\[0\]"),
])
def test_bad_scores_are_refused_with_a_clear_error(answerable, unanswerable, match):
    with pytest.raises(ValueError, match=match):
        choose_threshold(np.array(answerable), np.array(unanswerable))


def test_bad_thresholds_are_refused():
    with pytest.raises(TypeError, match="numbers"):
        error_rates(np.array(["a"]), np.array([0.1]), 0.5)
    with pytest.raises(ValueError, match="finite number"):
        error_rates(np.array([0.1]), np.array([0.1]), float("nan"))
    with pytest.raises(ValueError, match="ascending"):
        threshold_tradeoff(np.array([0.1]), np.array([0.2]), thresholds=[0.5, 0.3])


# ------------------------------------------------------------------ properties

scores = arrays(np.float32, st.integers(1, 30), elements=st.floats(-1, 1, width=32))


@given(scores, scores)
def test_the_curve_is_monotone_and_agrees_with_error_rates(answerable, unanswerable):
    curve = threshold_tradeoff(answerable, unanswerable)
    assert np.all(np.diff(curve.wrongly_refused) >= 0) and np.all(np.diff(curve.wrongly_answered) <= 0)
    assert curve.wrongly_refused[0] == 0 and curve.wrongly_answered[0] == 1  # the lowest answers everything
    assert curve.wrongly_refused[-1] == 1 and curve.wrongly_answered[-1] == 0  # the highest refuses everything
    for t, refused, answered in zip(*curve):
        assert error_rates(answerable, unanswerable, t) == (refused, answered)


@given(scores, scores, st.lists(st.floats(-1.2, 1.2), min_size=1, max_size=20))
def test_no_threshold_beats_the_choice(answerable, unanswerable, others):
    # Brute force: no threshold at all (the candidates or any other) has a smaller sum of errors.
    chosen = sum(error_rates(answerable, unanswerable, choose_threshold(answerable, unanswerable)))
    for t in [*others, *np.concatenate([answerable, unanswerable]).tolist()]:
        assert chosen <= sum(error_rates(answerable, unanswerable, t)) + 1e-12


@given(scores, scores, st.floats(0, 1))
def test_the_capped_choice_keeps_the_cap_and_answers_least_wrongly(answerable, unanswerable, cap):
    t = choose_threshold(answerable, unanswerable, max_wrongly_refused=cap)
    refused, answered = error_rates(answerable, unanswerable, t)
    assert refused <= cap
    for other in candidate_thresholds(answerable, unanswerable):
        other_refused, other_answered = error_rates(answerable, unanswerable, other)
        assert other_refused > cap or other_answered >= answered


# ------------------------------------------------------------------ the real corpus

@pytest.fixture(scope="module")
def docs_pipeline(encoder):
    """The whole Python-docs corpus, default chunking, embeddings cached; no generator loaded."""
    return rh.RAGPipeline.from_files(load_python_docs(), encoder=encoder, cache_embeddings=True)


class UntouchableGenerator:
    """A generator that fails the test if anything at all is asked of it."""

    def __getattr__(self, name):
        raise AssertionError(f"the generator was used (.{name}) for a question the pipeline should refuse")


def test_default_min_score_is_the_dev_choice(docs_pipeline):
    answerable = [q.question for q in load_labelled_questions("dev")]
    unanswerable = [q.question for q in load_unanswerable_questions("dev")]
    assert (len(answerable), len(unanswerable)) == (87, 23)
    best_a, best_u = best_scores(docs_pipeline, answerable), best_scores(docs_pipeline, unanswerable)
    chosen = choose_threshold(best_a, best_u)
    # The constant is the choice rounded to 3 decimals: the same value, and the same errors.
    assert chosen == pytest.approx(DEFAULT_MIN_SCORE, abs=1e-3) and rh.DEFAULT_MIN_SCORE == DEFAULT_MIN_SCORE
    assert error_rates(best_a, best_u, DEFAULT_MIN_SCORE) == error_rates(best_a, best_u, chosen)
    # What the constant's comment says: 18 of 87 wrongly refused, 3 of 23 wrongly answered.
    assert error_rates(best_a, best_u, DEFAULT_MIN_SCORE) == pytest.approx((18 / 87, 3 / 23))


def test_best_scores_are_what_the_pipeline_compares(docs_pipeline):
    questions = [OFF_TOPIC, load_labelled_questions("dev")[0].question]
    for question, score in zip(questions, best_scores(docs_pipeline, questions)):
        assert score == pytest.approx(docs_pipeline.retrieve(question, k=1)[0].score, abs=1e-5)


def with_threshold(pipe: rh.RAGPipeline, min_score: float) -> rh.RAGPipeline:
    """The same pipeline (same chunks and embeddings, nothing re-embedded) with ``min_score`` set."""
    guarded = copy.copy(pipe)
    guarded.min_score = min_score
    return guarded


def test_an_off_topic_question_is_refused_without_loading_the_generator(docs_pipeline):
    assert OFF_TOPIC in [q.question for q in load_unanswerable_questions(kind="off-topic")]
    pipe = with_threshold(docs_pipeline, DEFAULT_MIN_SCORE)
    res = pipe.answer(OFF_TOPIC)
    assert res.abstained and res.answer == ABSTAIN_ANSWER and "I don't know" in res.answer
    assert res.prompt is None and res.context == []
    assert len(res.hits) == 4 and res.hits[0].score < DEFAULT_MIN_SCORE  # the best hits, for inspection
    assert res.hits == docs_pipeline.retrieve(OFF_TOPIC)
    assert not pipe.generator_loaded  # never loaded


def test_a_refusal_never_touches_a_given_generator(encoder):
    pipe = rh.RAGPipeline(rh.SAMPLE_DOCUMENTS, k=2, encoder=encoder, generator=UntouchableGenerator(),
                          min_score=DEFAULT_MIN_SCORE)
    res = pipe.answer("How do I fold a fitted sheet?", stream=True)
    assert res.abstained and "I don't know" in res.answer and len(res.hits) == 2
    assert res.hits[0].score < DEFAULT_MIN_SCORE


def test_an_in_corpus_question_is_answered_as_before(docs_pipeline):
    question = "How do I send mail from a Python script?"  # a labelled question, best score about 0.76
    assert question in [q.question for q in load_labelled_questions()]
    before = docs_pipeline.answer(question, generate=False)
    after = with_threshold(docs_pipeline, DEFAULT_MIN_SCORE).answer(question, generate=False)
    assert not after.abstained and after.hits[0].score >= DEFAULT_MIN_SCORE
    assert (after.hits, after.prompt) == (before.hits, before.prompt)


def test_an_answer_with_a_threshold_is_the_answer_without_one(encoder, generator):
    plain = rh.RAGPipeline(rh.SAMPLE_DOCUMENTS, k=2, encoder=encoder, generator=generator, max_new_tokens=12)
    guarded = rh.RAGPipeline(rh.SAMPLE_DOCUMENTS, k=2, encoder=encoder, generator=generator, max_new_tokens=12,
                             min_score=DEFAULT_MIN_SCORE)
    before, after = plain.answer(rh.SAMPLE_QUESTION), guarded.answer(rh.SAMPLE_QUESTION)
    assert not after.abstained and after.hits[0].score == pytest.approx(0.7672, abs=1e-4)
    assert (after.hits, after.prompt, after.answer) == (before.hits, before.prompt, before.answer)
    assert "Jupiter" in after.answer
    # Exactly at the threshold the question is answered; just above its best score, refused.
    best = after.hits[0].score
    assert not rh.RAGPipeline(rh.SAMPLE_DOCUMENTS, k=2, encoder=encoder, generator=generator,
                              min_score=best).prepare(rh.SAMPLE_QUESTION, fit=False).abstained
    assert rh.RAGPipeline(rh.SAMPLE_DOCUMENTS, k=2, encoder=encoder, generator=generator,
                          min_score=np.nextafter(best, 1.0)).prepare(rh.SAMPLE_QUESTION).abstained
