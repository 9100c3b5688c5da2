"""Answer metrics (rag_helpers/answers.py, notebook 11, and engine/answer_metrics.py).

- hand-computed cases, with the arithmetic written out;
- properties (hypothesis): ranges, the symmetry of F1, EM => F1 = 1, and ROUGE-L equal to
  Google's rouge-score (the maintained reference) to 1e-12;
- support, groundedness and citations on the real packaged encoder: a copied sentence is
  supported, an invented one is not; the batched path gives the taught values;
- calibrate_min_score: ties, m = 0, exactly m answered;
- clear errors for bad arguments.

RAG_SLOW=1 also recomputes SUPPORT_THRESHOLD on the dev half (about a minute on 2 cores).
"""
from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag_helpers import answers
from rag_helpers.engine import answer_metrics as am

rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
SCORER = rouge_scorer.RougeScorer(["rougeL"])

# Texts made of words, punctuation, case, articles, digits and a few non-ASCII letters:
# where SQuAD's and rouge-score's tokenisers differ.
WORDS = ["the", "a", "an", "The", "Python", "file", "files", "read", "line", "by", "copy", "re.sub()",
         "shutil.copy", "x=1", "é", "naïve", "42", "don't", "--", "...", "A", "loop", "[1]", "Ωmega"]
texts = st.lists(st.sampled_from(WORDS), max_size=14).map(" ".join) | st.text(max_size=40)


# ---------------------------------------------------------------- hand-computed

def test_normalize_answer_as_squad():
    assert answers.normalize_answer("The  Answer: shutil.copy()!") == "answer shutilcopy"
    assert answers.normalize_answer("An apple, a day.") == "apple day"
    assert answers.normalize_answer("theory and THE there") == "theory and there"  # whole words only
    assert answers.answer_tokens("  ") == []


def test_exact_match():
    assert answers.exact_match("The Eiffel Tower.", "eiffel   tower") == 1.0
    assert answers.exact_match("Eiffel Tower in Paris", "Eiffel Tower") == 0.0


def test_token_f1_by_hand():
    # "cat sat on mat" vs "cat is on mat": 3 shared of 4 and 4 -> P = R = 3/4, F1 = 3/4.
    assert answers.token_f1("The cat sat on the mat.", "A cat is on the mat") == pytest.approx(0.75, abs=1e-15)
    # "python python python" vs "python is python": Counter min(3, 2) = 2 shared -> P = 2/3, R = 2/3.
    assert answers.token_f1("python python python", "python is python") == pytest.approx(2 / 3, abs=1e-15)
    # "use shutilcopy" (2) vs "you can use shutilcopy function to copy file" (8): 2 shared ->
    # P = 1, R = 1/4, F1 = 2 * 1 * 0.25 / 1.25 = 0.4.
    assert answers.token_f1("Use shutil.copy()", "You can use the shutil.copy() function to copy a file.") == \
        pytest.approx(0.4, abs=1e-15)
    # Nothing shared -> 0; both empty (only articles and punctuation) -> 1; one empty -> 0.
    assert answers.token_f1("No idea.", "Use shutil.copy().") == 0.0
    assert answers.token_f1("The.", "a, an!") == 1.0
    assert answers.token_f1("", "anything") == 0.0


def test_token_recall_by_hand():
    # gold "cat is on mat" (4): the prediction has cat, on, mat -> 3/4.
    assert answers.token_recall("The cat sat on the mat.", "A cat is on the mat") == 0.75
    # Repeats: gold "python python is" needs two pythons; the prediction has one -> 2/3.
    assert answers.token_recall("python is", "python python is") == pytest.approx(2 / 3)
    assert answers.token_recall("anything", "") == 1.0


def test_rouge_l_by_hand():
    # LCS of "the cat sat on the mat" and "on the mat the cat sat" is "the cat sat": 3 of 6 and 6.
    assert answers.rouge_l("the cat sat on the mat", "on the mat the cat sat") == pytest.approx((0.5, 0.5, 0.5))
    # "line by line" is the LCS (3); "reads" != "read" (no stemming): P = 3/6, R = 3/10,
    # F1 = 2 * 0.5 * 0.3 / 0.8 = 0.375.
    assert answers.rouge_l("python reads files line by line", "read a file line by line with a for loop") == \
        pytest.approx((0.5, 0.3, 0.375), abs=1e-15)
    # rouge-score's tokens: "re sub replaces" (3) vs "use re sub to replace" (5): LCS "re sub" = 2 ->
    # P = 2/3, R = 2/5, F1 = 2 * (2/3) * (2/5) / (2/3 + 2/5) = 0.5.
    assert answers.rouge_l("re.sub() replaces", "Use re.sub to replace") == pytest.approx((2 / 3, 0.4, 0.5), abs=1e-15)
    assert answers.rouge_l("", "gold") == (0.0, 0.0, 0.0)
    assert answers.rouge_tokens("Re.Sub(x=1) é") == ["re", "sub", "x", "1"]


def test_lcs_length():
    assert answers.lcs_length(list("ABCBDAB"), list("BDCABA")) == 4   # the textbook example (CLRS)
    assert answers.lcs_length([], ["a"]) == 0


# ---------------------------------------------------------------- properties

@given(texts, texts)
def test_f1_is_a_symmetric_share(prediction, gold):
    f1 = answers.token_f1(prediction, gold)
    assert 0.0 <= f1 <= 1.0
    assert f1 == pytest.approx(answers.token_f1(gold, prediction), abs=1e-12)
    recall, precision = answers.token_recall(prediction, gold), answers.token_recall(gold, prediction)
    assert 0.0 <= recall <= 1.0
    if answers.answer_tokens(prediction) and answers.answer_tokens(gold):
        # F1 is the harmonic mean of precision (recall the other way round) and recall.
        harmonic = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        assert f1 == pytest.approx(harmonic, abs=1e-12)


@given(texts, texts)
def test_exact_match_implies_f1_one(prediction, gold):
    if answers.exact_match(prediction, gold) == 1.0:
        assert answers.token_f1(prediction, gold) == 1.0
        assert answers.token_recall(prediction, gold) == 1.0
    assert answers.exact_match(prediction, f" The {prediction}. ") == 1.0   # articles, punctuation, spaces


@given(texts, texts)
def test_rouge_l_equals_rouge_score(prediction, gold):
    theirs = SCORER.score(gold, prediction)["rougeL"]   # rouge-score's order: (target, prediction)
    ours = answers.rouge_l(prediction, gold)
    assert np.allclose(ours, (theirs.precision, theirs.recall, theirs.fmeasure), rtol=0, atol=1e-12)
    assert all(0.0 <= x <= 1.0 for x in ours)


@given(st.lists(st.sampled_from("abcd"), max_size=12), st.lists(st.sampled_from("abcd"), max_size=12))
def test_lcs_properties(a, b):
    n = answers.lcs_length(a, b)
    assert n == answers.lcs_length(b, a)
    assert n <= min(len(a), len(b))
    assert answers.lcs_length(a, a) == len(a)
    # Appending the same token to both lengthens the LCS by one.
    assert answers.lcs_length(a + ["z"], b + ["z"]) == n + 1


@given(texts, texts)
def test_engine_gives_the_taught_values(prediction, gold):
    for name in ("exact_match", "token_f1", "token_recall", "rouge_l"):
        assert getattr(am, name)(prediction, gold) == getattr(answers, name)(prediction, gold)
    assert am.split_sentences(prediction) == answers.split_sentences(prediction)
    assert am.context_precision(prediction, [gold]) == answers.context_precision(prediction, [gold])


# ---------------------------------------------------------------- sentences and context precision

def test_split_sentences():
    text = "Jupiter is big [1]. Mars is red!\n\nSteps:\n- open the file\n- read it\n1. first\nSo \"quoted.\" Next? yes"
    assert answers.split_sentences(text) == [
        "Jupiter is big [1].", "Mars is red!", "Steps:", "- open the file", "- read it",
        '1. first So "quoted."', "Next?", "yes"]   # a line break inside a paragraph is a space
    # A hard-wrapped paragraph is one sentence; whitespace collapsed; empty pieces dropped.
    assert answers.split_sentences("one line\nwrapped here.\n\n\n   \n") == ["one line wrapped here."]
    assert answers.split_sentences("") == []
    assert answers.split_sentences("A [2]. B.") == ["A [2].", "B."]


@given(texts)
def test_split_sentences_keeps_every_word(text):
    assert " ".join(answers.split_sentences(text)).split() == text.split()


def test_context_precision_by_hand():
    context = ["Jupiter is the largest planet.", "Mars is red."]
    # "jupiter has 95 moons" (normalised): only "jupiter" is in the context -> 1/4.
    assert answers.context_precision("Jupiter has 95 moons.", context) == 0.25
    assert answers.context_precision("Mars is the largest planet", " ".join(context)) == 1.0
    assert answers.context_precision("The.", context) == 1.0   # nothing claimed


# ---------------------------------------------------------------- support, on the real encoder

GOLD = ("The shutil module contains a copyfile() function. Note that on Windows NTFS volumes, it does not "
        "copy alternate data streams nor resource forks on macOS HFS+ volumes, though both are now rarely used. "
        "It also doesn't copy file permissions and metadata, though using shutil.copy2() instead will preserve "
        "most (though not all) of it.")
INVENTED = "The Eiffel Tower was painted green in 1889 by a team of sailors."


def test_a_copied_sentence_is_supported_and_an_invented_one_is_not(encoder):
    copied = answers.split_sentences(GOLD)[0]
    support = answers.sentence_support(f"{copied} {INVENTED}", [GOLD], encoder)
    assert support.shape == (2,) and support.dtype == np.float32
    assert support[0] > 0.99 and support[1] < answers.SUPPORT_THRESHOLD
    assert answers.groundedness(f"{copied} {INVENTED}", [GOLD], encoder) == 0.5
    assert answers.groundedness(copied, [GOLD], encoder) == 1.0
    assert answers.groundedness("", [GOLD], encoder) == 1.0
    assert answers.sentence_support("Anything.", [], encoder).tolist() == [0.0]


def test_the_batched_support_gives_the_taught_values(encoder):
    pool = answers.split_sentences(GOLD) + [INVENTED, "Use shutil.copy2() to keep metadata [1].",
                                            "Files are copied with shutil [2]. And permissions too.", ""]
    rng = np.random.default_rng(7)
    batch_answers, batch_docs = [], []
    for _ in range(12):
        batch_answers.append(" ".join(rng.choice(pool, rng.integers(0, 4))))
        batch_docs.append([str(d) for d in rng.choice(pool, rng.integers(0, 4))])
    fast = am.sentence_supports(batch_answers, batch_docs, encoder)
    for answer, docs, got in zip(batch_answers, batch_docs, fast):
        want = answers.sentence_support(answer, docs, encoder)
        assert got.shape == want.shape and got.dtype == np.float32
        assert np.allclose(got, want, atol=1e-4), (answer, docs)


def test_the_batched_extractive_answers_are_the_taught_ones(encoder):
    pool = answers.split_sentences(GOLD) + [INVENTED, "Jupiter is the largest planet.", "Mars is red. It is cold.",
                                            "Use shutil.copy2() to keep metadata.", ""]
    questions = ["How do I copy a file?", "Which planet is the largest?", "Is Mars cold?"]
    rng = np.random.default_rng(11)
    batch_questions, batch_docs = [], []
    for _ in range(12):
        batch_questions.append(str(rng.choice(questions)))
        batch_docs.append([str(d) for d in rng.choice(pool, rng.integers(0, 4))])
    for n in (1, 2, 3):
        fast = am.extractive_answers(batch_questions, batch_docs, encoder, n)
        assert fast == [answers.extractive_answer(q, d, encoder, n) for q, d in zip(batch_questions, batch_docs)]
    assert am.extractive_answers([], [], encoder) == []
    with pytest.raises(ValueError, match="one list of strings per question"):
        am.extractive_answers(["a?"], [], encoder)
    with pytest.raises(ValueError, match=r"questions\[0\] is empty"):
        am.extractive_answers([" "], [["x."]], encoder)
    with pytest.raises(ValueError, match="n_sentences"):
        am.extractive_answers(["a?"], [["x."]], encoder, 0)


def test_citations(encoder):
    docs = ["Jupiter is the largest planet in the solar system.", "Mars is often called the red planet."]
    assert answers.citations("A [1]. B [2][1]. C [10]") == [1, 2, 1, 10]
    assert answers.citation_accuracy("Jupiter is the largest planet [1]. Mars is the red planet [2].", docs,
                                     encoder) == (1.0, 1.0)
    # Both valid; the first sentence cites a document that does not say it: 1 of 2 supported.
    assert answers.citation_accuracy("Jupiter is the largest planet [2]. Mars is the red planet [2].", docs,
                                     encoder) == (1.0, 0.5)
    # [7] names no document: invalid, and its sentence unsupported; [1] valid and supporting.
    assert answers.citation_accuracy("Jupiter is the largest planet [7]. Mars is the red planet [2].", docs,
                                     encoder) == (0.5, 0.5)
    assert answers.citation_accuracy("Jupiter is the largest planet.", docs, encoder) == (0.0, 0.0)
    assert am.citation_accuracy("Jupiter is the largest planet [1].", docs, encoder) == (1.0, 1.0)


def test_extractive_answer(encoder):
    docs = ["Mars is red. Jupiter is the largest planet.", "Saturn has rings.\n\nVenus is hot."]
    assert answers.extractive_answer("Which planet is the largest?", docs, encoder, 1) == \
        "Jupiter is the largest planet."
    two = answers.extractive_answer("Which planet has rings?", docs, encoder)
    assert two.startswith("Saturn has rings.") and len(answers.split_sentences(two)) == 2
    assert len(answers.split_sentences(answers.extractive_answer("planets", docs, encoder, 10))) == 4
    assert answers.extractive_answer("planets", [], encoder) == ""
    assert am.extractive_answer("Which planet is the largest?", docs, encoder, 1) == "Jupiter is the largest planet."


# ---------------------------------------------------------------- calibrate_min_score

def test_calibrate_min_score_cases():
    # n = 20, 5 % -> m = 1: halfway between the best two.
    scores = [0.1 * i / 20 for i in range(20)]                       # 0.0 ... 0.095
    assert answers.calibrate_min_score(scores, 0.05) == pytest.approx((0.095 + 0.09) / 2)
    # n = 10, 5 % -> m = 0: above every one.
    assert answers.calibrate_min_score([0.3, 0.5, 0.2], 0.05) == pytest.approx(0.55)
    # m = 2 of 4, no tie: halfway between the 2nd and 3rd best; exactly 2 answered.
    t = answers.calibrate_min_score([0.1, 0.4, 0.3, 0.2], 0.5)
    assert t == pytest.approx(0.25) and isinstance(t, float)
    # A tie at the cut (m = 2, s = 0.4, 0.3, 0.3, 0.1): move up to the first drop: only 1 answered.
    assert answers.calibrate_min_score([0.1, 0.3, 0.4, 0.3], 0.5) == pytest.approx(0.35)
    # All tied: none can be answered without answering all: above them.
    assert answers.calibrate_min_score([0.3, 0.3, 0.3, 0.3], 0.5) == pytest.approx(0.35)
    # 0.29 * 100 is 28.999999999999996 in floats: still m = 29.
    hundred = list(np.linspace(1, 0, 100))
    assert sum(s >= answers.calibrate_min_score(hundred, 0.29) for s in hundred) == 29
    # Every one may be answered.
    assert answers.calibrate_min_score([0.2, 0.4], 1.0) == pytest.approx(0.15)


@given(st.lists(st.floats(-1, 1, allow_nan=False) | st.sampled_from([0.3, 0.5, 0.5000000000000001]),
                min_size=1, max_size=40),
       st.floats(0, 0.99))
def test_calibrate_answers_at_most_m(scores, max_answered):
    t = answers.calibrate_min_score(scores, max_answered)
    s = sorted(scores, reverse=True)
    m = math.floor(max_answered * len(s) + 1e-9)
    answered = sum(x >= t for x in s)
    assert answered <= m
    if 0 < m < len(s) and s[m - 1] > s[m]:
        assert answered == m            # no tie at the cut: exactly m
    assert am.calibrate_min_score(np.array(scores), max_answered) == t


# ---------------------------------------------------------------- errors

def test_bad_arguments_get_clear_errors(encoder):
    with pytest.raises(TypeError, match="prediction must be a str"):
        am.token_f1(None, "gold")
    with pytest.raises(TypeError, match="gold must be a str, got list"):
        am.rouge_l("a", ["gold"])
    with pytest.raises(TypeError, match=r"documents must be a list of strings, got one str"):
        am.groundedness("An answer.", "one document", encoder)
    with pytest.raises(TypeError, match=r"documents\[1\] must be a str"):
        am.sentence_support("An answer.", ["ok", 3], encoder)
    with pytest.raises(ValueError, match="encoder is None"):
        am.groundedness("An answer.", ["doc"], None)
    with pytest.raises(ValueError, match="threshold must be a finite number"):
        am.groundedness("An answer.", ["doc"], encoder, threshold=float("nan"))
    with pytest.raises(ValueError, match="documents has 1 entries for 2 answers"):
        am.sentence_supports(["a", "b"], [["doc"]], encoder)
    with pytest.raises(ValueError, match="n_sentences must be a positive integer"):
        am.extractive_answer("q?", ["doc"], encoder, 0)
    with pytest.raises(ValueError, match="off_topic_scores is empty"):
        am.calibrate_min_score([])
    with pytest.raises(ValueError, match="max_answered must be a share"):
        am.calibrate_min_score([0.1], 5)
    with pytest.raises(ValueError, match=r"off_topic_scores\[1\] is not finite"):
        am.calibrate_min_score([0.1, float("nan")])


# ---------------------------------------------------------------- where SUPPORT_THRESHOLD comes from

def test_the_threshold_rule_on_known_values():
    t, missed, false_support = answers.equal_error_threshold(np.array([0.6, 0.7, 0.8, 0.9]),
                                                             np.array([0.1, 0.2, 0.3, 0.65]))
    # At 0.61 to 0.65 one of four is missed (0.6) and one of four falsely supported (0.65): equal; the lowest.
    assert (t, missed, false_support) == (0.61, 0.25, 0.25)


@pytest.mark.skipif(not os.environ.get("RAG_SLOW"), reason="about a minute on 2 cores: set RAG_SLOW=1")
def test_support_threshold_is_the_rule_on_the_dev_half(encoder):
    t, missed, false_support = am.measure_support_threshold(encoder, "dev")
    assert t == answers.SUPPORT_THRESHOLD
    assert max(missed, false_support) < 0.1
    test_t, *_ = am.measure_support_threshold(encoder, "test")
    assert abs(test_t - t) <= 0.05          # the choice carries over to the half that played no part in it


def test_the_off_topic_questions_are_the_calibrations():
    from rag_helpers.engine.calibration import off_topic_questions

    for split in ("calibration", "held_out"):
        assert answers.load_off_topic_questions(split) == off_topic_questions(split)
    with pytest.raises(ValueError, match="split must be"):
        answers.load_off_topic_questions("dev")
