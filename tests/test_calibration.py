"""`RAGPipeline(min_score="auto")`: "I don't know" calibrated on the pipeline's own documents.

Measured on three collections (the shipped Python docs, the planet sample, the Python tutorial when
python3.11-doc is installed): at least 90 % of the answerable questions answered and at least 90 % of
held-out off-topic questions (never used for calibration) refused. And `min_score` is checked: a
threshold outside [-1, 1], NaN or a bool would silently refuse everything or nothing.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import rag_helpers as rh
from rag_helpers.answers import calibrate_min_score
from rag_helpers.engine.calibration import MAX_OFF_TOPIC_ANSWERED, calibrate, check_min_score, off_topic_questions
from rag_helpers.engine.corpus import load_labelled_questions, load_unanswerable_questions

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = json.loads((ROOT / "benchmarks" / "data" / "abstention_questions.json").read_text())
TUTORIAL = Path("/usr/share/doc/python3.11/html/_sources/tutorial")


@pytest.fixture(scope="module")
def encoder():
    return rh.load_encoder()


@pytest.fixture(scope="module")
def held_out_off_topic() -> list[str]:
    return off_topic_questions("held_out") + [q.question for q in load_unanswerable_questions(kind="off-topic")]


def _rates(pipe: rh.RAGPipeline, answerable: list[str], off_topic: list[str]) -> tuple[float, float]:
    """(share of answerable questions answered, share of off-topic questions refused)."""
    def best(questions):  # one batch: the same scores as pipe.retrieve(q, k=1)[0].score
        return (rh.embed(questions, pipe.encoder) @ pipe.doc_embeddings.T).max(axis=1)
    return float(np.mean(best(answerable) >= pipe.min_score)), float(np.mean(best(off_topic) < pipe.min_score))


def test_the_calibration_and_held_out_questions_do_not_overlap():
    calibration, held_out = off_topic_questions("calibration"), off_topic_questions("held_out")
    assert len(calibration) >= 150 and len(held_out) >= 80
    assert not set(calibration) & set(held_out)
    assert not set(calibration) & {q.question for q in load_unanswerable_questions()}


def test_auto_on_the_python_docs_answers_and_refuses_as_promised(encoder, held_out_off_topic):
    pipe = rh.RAGPipeline.from_corpus("python-docs", encoder=encoder, min_score="auto", cache_embeddings=True)
    assert pipe.min_score_source == "auto" and isinstance(pipe.min_score, float)
    answered, refused = _rates(pipe, [q.question for q in load_labelled_questions("test")], held_out_off_topic)
    assert answered >= 0.9 and refused >= 0.9, (pipe.min_score, answered, refused)
    # The README's example is answered; the off-topic example is refused (no model is loaded).
    assert not pipe.answer("How do I read a file line by line?", generate=False).abstained
    res = pipe.answer("Who won the 2018 FIFA World Cup?")
    assert res.abstained and "I don't know" in res.answer and not pipe.generator_loaded


def test_auto_on_the_planet_sample(encoder, held_out_off_topic):
    pipe = rh.RAGPipeline(rh.SAMPLE_DOCUMENTS, encoder=encoder, min_score="auto")
    answered, refused = _rates(pipe, QUESTIONS["planets"], held_out_off_topic)
    assert answered >= 0.9 and refused >= 0.9, (pipe.min_score, answered, refused)
    assert not pipe.answer(rh.SAMPLE_QUESTION, generate=False).abstained


@pytest.mark.skipif(not TUTORIAL.is_dir(), reason="the Python tutorial (Debian package python3.11-doc) is not installed")
def test_auto_on_the_python_tutorial(encoder, held_out_off_topic):
    pipe = rh.RAGPipeline.from_files([TUTORIAL], encoder=encoder, min_score="auto", cache_embeddings=True)
    answerable = [q["question"] for q in QUESTIONS["python-tutorial"]]
    answered, refused = _rates(pipe, answerable, held_out_off_topic)
    assert answered >= 0.9 and refused >= 0.9, (pipe.min_score, answered, refused)


def test_the_threshold_lets_through_the_stated_share_of_calibration_questions(encoder):
    pipe = rh.RAGPipeline(rh.SAMPLE_DOCUMENTS, encoder=encoder, min_score="auto")
    best = (rh.embed(off_topic_questions("calibration"), encoder) @ pipe.doc_embeddings.T).max(axis=1)
    assert best[0] == pytest.approx(pipe.retrieve(off_topic_questions("calibration")[0], k=1)[0].score, abs=1e-6)
    allowed = math.floor(MAX_OFF_TOPIC_ANSWERED * len(best))
    assert int((best >= pipe.min_score).sum()) <= allowed
    assert pipe.min_score == pytest.approx(calibrate(pipe.doc_embeddings, encoder))
    assert pipe.min_score == pytest.approx(calibrate_min_score(best, MAX_OFF_TOPIC_ANSWERED), abs=1e-6)


def test_a_given_number_is_kept_and_default_stays_importable(encoder):
    pipe = rh.RAGPipeline(rh.SAMPLE_DOCUMENTS, encoder=encoder, min_score=rh.DEFAULT_MIN_SCORE)
    assert pipe.min_score == rh.DEFAULT_MIN_SCORE and pipe.min_score_source == "given"
    assert rh.RAGPipeline(rh.SAMPLE_DOCUMENTS, encoder=encoder).min_score is None


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), 2.0, -1.5, "0.3", "AUTO", True, [0.3]])
def test_a_threshold_that_would_silently_refuse_everything_or_nothing_is_refused(bad, encoder):
    with pytest.raises((ValueError, TypeError), match="min_score"):
        check_min_score(bad)
    with pytest.raises((ValueError, TypeError), match="min_score"):
        rh.RAGPipeline(rh.SAMPLE_DOCUMENTS, encoder=encoder, min_score=bad)


@pytest.mark.parametrize("good", [-1, -0.25, 0, 0.5, 1.0, np.float32(0.3), None, "auto"])
def test_valid_thresholds_pass(good):
    value = check_min_score(good)
    assert value == good or (value is None and good is None)
