"""BM25 from scratch against bm25s (same tokens, same scores, same top-10) and against the formula."""
from __future__ import annotations

import ast
import doctest
import math
import re
import sysconfig
from collections import Counter
from pathlib import Path

import bm25s
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import rag_helpers as rh
import rag_helpers.engine.bm25 as bm25_module
from rag_helpers.engine.bm25 import ENGLISH_STOPWORDS, BM25Index, tokenize

PARAMETERS = [(1.5, 0.75), (1.2, 0.75), (0.9, 0.4), (2.0, 1.0), (1.5, 0.0), (0.0, 0.75)]


# ------------------------------------------------------------ real text collections
def python_docs_collection() -> tuple[list[str], list[str]]:
    """The shipped Python FAQ/HOWTO pages cut at blank lines (~4,800 paragraphs), and the 174 FAQ questions."""
    from rag_helpers.engine.corpus import load_labelled_questions, load_python_docs

    paragraphs = [p for doc in load_python_docs() for p in doc.text.split("\n\n") if p.strip()]
    return paragraphs, [q.question for q in load_labelled_questions()]


# A fixed set of pure-Python standard library modules: their docstrings are real English prose.
_STDLIB_MODULES = ["argparse", "bisect", "calendar", "csv", "dataclasses", "difflib", "fractions", "functools",
                   "heapq", "inspect", "json/__init__", "logging/__init__", "pathlib", "random", "shutil",
                   "statistics", "string", "subprocess", "tempfile", "textwrap", "typing", "zipfile"]


def docstring_collection() -> tuple[list[str], list[str]]:
    """rh.SAMPLE_DOCUMENTS plus the docstring paragraphs of some standard library modules, and queries.

    Read with ``ast`` from the source files (nothing is imported), so it works
    on any machine with Python's standard library.
    """
    root = Path(sysconfig.get_paths()["stdlib"])
    paragraphs = list(rh.SAMPLE_DOCUMENTS)
    for name in _STDLIB_MODULES:
        path = root / f"{name}.py"
        if not path.exists():
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                for paragraph in (ast.get_docstring(node) or "").split("\n\n"):
                    if len(paragraph.split()) >= 5:
                        paragraphs.append(" ".join(paragraph.split()))
    queries = [rh.SAMPLE_QUESTION, "which planet is the hottest?", "create a temporary directory",
               "copy a file and its permissions", "parse command line arguments", "read a CSV file",
               "the median of a list of numbers", "wrap text to a given width", "random sample without replacement",
               "compare two sequences and show the differences", "the signature of a function", "zip archive",
               "error error error", "the the the", "xyzzy unknown words only"]
    return paragraphs, queries


COLLECTIONS = {"python_docs": python_docs_collection, "docstrings": docstring_collection}


@pytest.fixture(scope="module", params=list(COLLECTIONS))
def collection(request):
    documents, queries = COLLECTIONS[request.param]()
    assert len(documents) > 300 and len(queries) >= 15
    return documents, queries


def assert_same_top_k(ours_ids, ours_scores, ref_ids, ref_scores, rtol=1e-6):
    """Rank by rank the same scores; the same documents, up to the order of exactly tied ones.

    bm25s picks its top k with argpartition, which leaves tied documents in
    no particular order; we put the lower index first.
    """
    np.testing.assert_allclose(ours_scores, ref_scores, rtol=rtol)
    for row, (ids, scores, ref, ref_s) in enumerate(zip(ours_ids, ours_scores, ref_ids, ref_scores)):
        boundary = ref_s[-1]
        above = ref_s > boundary * (1 + rtol)  # clear of a tie at the cut
        assert Counter(ids[above].tolist()) == Counter(ref[above].tolist()), f"query {row}"
        # Inside each group of equal scores, the lower index comes first.
        for value in np.unique(scores):
            assert np.all(np.diff(ids[scores == value]) > 0), f"query {row}: ties not in index order"


# ------------------------------------------------------------------- vs bm25s
@pytest.mark.parametrize("k1, b", PARAMETERS)
def test_same_scores_and_top_10_as_bm25s(collection, k1, b):
    documents, queries = collection
    index = BM25Index(k1=k1, b=b).fit(documents)
    reference = bm25s.BM25(k1=k1, b=b, method="lucene")
    reference.index([index.tokenize(d) for d in documents], show_progress=False)
    query_tokens = [index.tokenize(q) for q in queries]

    ours = index.scores(queries)
    theirs = np.stack([reference.get_scores(tokens) for tokens in query_tokens])
    assert ours.shape == (len(queries), len(documents)) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)

    ids, scores = index.search(queries, 10)
    # Identical top-10: the course's rule applied to bm25s's own scores ...
    np.testing.assert_array_equal(ids, np.argsort(-theirs, axis=1, kind="stable")[:, :10])
    # ... and bm25s's own retrieval, up to the order of exact ties.
    found = reference.retrieve(query_tokens, k=10, show_progress=False)
    assert_same_top_k(ids, scores, found.documents, found.scores)


def test_same_as_bm25s_with_stop_words(collection):
    documents, queries = collection
    queries = [q for q in queries if tokenize(q, ENGLISH_STOPWORDS)]  # "the the the" has no word left
    index = BM25Index(stopwords=ENGLISH_STOPWORDS).fit(documents)
    reference = bm25s.BM25()
    reference.index([tokenize(d, ENGLISH_STOPWORDS) for d in documents], show_progress=False)
    theirs = np.stack([reference.get_scores(tokenize(q, ENGLISH_STOPWORDS)) for q in queries])
    np.testing.assert_allclose(index.scores(queries), theirs, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(index.search(queries, 10)[0], np.argsort(-theirs, axis=1, kind="stable")[:, :10])


def test_idf_and_lengths_are_bm25s_numbers(collection):
    documents, _ = collection
    index = BM25Index().fit(documents)
    reference = bm25s.BM25()
    reference.index([index.tokenize(d) for d in documents], show_progress=False)
    n = len(documents)
    words_of = [set(index.tokenize(d)) for d in documents]
    for word in ["python", "the", "error", "file"]:
        df = sum(word in words for words in words_of)
        assert index.idf[index.vocabulary[word]] == pytest.approx(math.log(1 + (n - df + 0.5) / (df + 0.5)), rel=1e-7)
    assert index.avg_doc_length == pytest.approx(np.mean([len(index.tokenize(d)) for d in documents]), rel=1e-12)
    assert len(index.vocabulary) == len(set(reference.vocab_dict) - {""})


def test_real_questions_find_their_page_far_more_often_than_chance():
    # A sanity check of the ranking itself: the FAQ heading's words point to the answer's page.
    from rag_helpers.engine.corpus import load_labelled_questions, load_python_docs

    paragraphs, sources = [], []
    for page in load_python_docs():
        for p in page.text.split("\n\n"):
            if p.strip():
                paragraphs.append(p)
                sources.append(page.source)
    questions = load_labelled_questions()
    ids, _ = BM25Index(stopwords=ENGLISH_STOPWORDS).fit(paragraphs).search([q.question for q in questions], 1)
    top1 = np.mean([sources[row[0]] == q.source for row, q in zip(ids, questions)])
    share = Counter(sources)
    chance = np.mean([share[q.source] / len(sources) for q in questions])  # a random paragraph's odds
    assert top1 > 5 * chance


# ------------------------------------------------------- against the formula itself
def reference_bm25(token_lists: list[list[str]], query: list[str], k1: float, b: float) -> np.ndarray:
    """The module docstring's formula, word by word, in float64."""
    n = len(token_lists)
    avgdl = sum(len(t) for t in token_lists) / n
    df = Counter(word for tokens in token_lists for word in set(tokens))
    scores = np.zeros(n)
    for j, tokens in enumerate(token_lists):
        tf = Counter(tokens)
        for word in query:
            if tf[word]:
                idf = math.log(1 + (n - df[word] + 0.5) / (df[word] + 0.5))
                scores[j] += idf * tf[word] / (tf[word] + k1 * (1 - b + b * len(tokens) / avgdl))
    return scores


WORDS = ["jupiter", "venus", "planet", "sun", "hot", "big", "moon", "red", "ocean", "deep"]
word_docs = st.lists(st.lists(st.sampled_from(WORDS), min_size=1, max_size=12).map(" ".join), min_size=1, max_size=25)
word_queries = st.lists(st.sampled_from(WORDS + ["comet"]), min_size=1, max_size=6).map(" ".join)


@given(word_docs, word_queries, st.sampled_from(PARAMETERS))
def test_scores_follow_the_formula(documents, query, params):
    k1, b = params
    index = BM25Index(k1=k1, b=b).fit(documents)
    expected = reference_bm25([d.split() for d in documents], query.split(), k1, b)
    scores = index.scores(query)
    assert scores.shape == (len(documents),) and scores.dtype == np.float32
    np.testing.assert_allclose(scores, expected, rtol=2e-6, atol=1e-6)


@given(word_docs, st.lists(word_queries, min_size=1, max_size=5), st.integers(1, 30))
def test_search_is_the_stable_argsort_of_the_scores(documents, queries, k):
    index = BM25Index().fit(documents)
    k = min(k, len(documents))
    ids, scores = index.search(queries, k)
    all_scores = index.scores(queries)
    assert ids.shape == scores.shape == (len(queries), k) and ids.dtype == np.int64
    np.testing.assert_array_equal(ids, np.argsort(-all_scores, axis=1, kind="stable")[:, :k])
    np.testing.assert_array_equal(scores, np.take_along_axis(all_scores, ids, axis=1))
    for i, query in enumerate(queries):  # one query: the same, without the batch axis
        one_ids, one_scores = index.search(query, k)
        np.testing.assert_array_equal(one_ids, ids[i])
        np.testing.assert_array_equal(one_scores, scores[i])


@given(word_docs, word_queries)
def test_properties_of_the_scores(documents, query):
    index = BM25Index().fit(documents)
    scores = index.scores(query)
    words = set(query.split())
    matches = np.array([bool(words & set(d.split())) for d in documents])
    assert (scores[~matches] == 0).all() and (scores[matches] > 0).all()
    # Word order does not matter; a repeated query word counts twice.
    np.testing.assert_allclose(index.scores(" ".join(reversed(query.split()))), scores, rtol=1e-6)
    word = query.split()[0]
    np.testing.assert_allclose(index.scores(f"{word} {word}"), 2 * index.scores(word), rtol=1e-6)


@given(word_docs, word_queries, st.integers(0, 2**32 - 1))
def test_permuting_the_documents_permutes_the_scores(documents, query, seed):
    order = np.random.default_rng(seed).permutation(len(documents))
    scores = BM25Index().fit(documents).scores(query)
    permuted = BM25Index().fit([documents[i] for i in order]).scores(query)
    np.testing.assert_allclose(permuted, scores[order], rtol=1e-6)


def test_rare_words_and_short_documents_score_higher():
    index = BM25Index().fit(["planet jupiter", "planet venus", "planet mars", "jupiter " + "filler " * 20])
    scores = index.scores("planet jupiter")
    assert scores[0] == scores.max()          # both words, short
    assert scores[0] > scores[3]              # jupiter alone in a long document
    s_rare, s_common = index.scores("venus")[1], index.scores("planet")[1]
    assert s_rare > s_common                  # venus is rarer than planet


# ------------------------------------------------------------------- tokenizer
@pytest.mark.parametrize(
    "text, stopwords, tokens",
    [
        ("Jupiter's Great Red Spot!", None, ["jupiter", "s", "great", "red", "spot"]),
        ("os.path.join(a_b, 'x-y')", None, ["os", "path", "join", "a", "b", "x", "y"]),
        ("Python 3.11 released", None, ["python", "3", "11", "released"]),
        ("Café naïve 東京 ÉCOLE", None, ["café", "naïve", "東京", "école"]),
        ("The largest planet is Jupiter", ENGLISH_STOPWORDS, ["largest", "planet", "jupiter"]),
        ("  ...  ", None, []),
    ],
)
def test_tokenize(text, stopwords, tokens):
    assert tokenize(text, stopwords) == tokens


def test_stop_words_are_lucenes_english_set():
    assert ENGLISH_STOPWORDS == frozenset(bm25s.stopwords.STOPWORDS_EN)


def test_docstring_examples_run():
    result = doctest.testmod(bm25_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 3 and result.failed == 0


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: BM25Index(k1=-1), ValueError, "k1 must be a finite number >= 0"),
        (lambda: BM25Index(k1=float("inf")), ValueError, "k1 must be a finite number >= 0"),
        (lambda: BM25Index(b=1.5), ValueError, "b must be a number in [0, 1]"),
        (lambda: BM25Index(stopwords="the"), TypeError, "not a single string"),
        (lambda: BM25Index().fit([]), ValueError, "documents is empty"),
        (lambda: BM25Index().fit("one document"), TypeError, "not a single str"),
        (lambda: BM25Index().fit(["fine", "  "]), ValueError, "documents[1] is empty"),
        (lambda: BM25Index().fit(["...", "!"]), ValueError, "no document has a single token"),
        (lambda: BM25Index(stopwords=ENGLISH_STOPWORDS).fit(["the", "a"]), ValueError, "no document has a single"),
        (lambda: BM25Index().scores("planet"), RuntimeError, "call .fit(documents) first"),
        (lambda: BM25Index().fit(["a planet"]).search("planet", 2), ValueError, "k=2 is larger than the number"),
        (lambda: BM25Index().fit(["a planet"]).search("planet", 0), ValueError, "k must be at least 1"),
        (lambda: BM25Index().fit(["a planet"]).scores("   "), ValueError, "queries[0] is empty"),
        (lambda: BM25Index().fit(["a planet"]).scores(["planet", "?!"]), ValueError, "queries[1] ('?!') has no word"),
        (lambda: BM25Index().fit(["a planet"]).scores([]), ValueError, "queries is empty"),
        (lambda: BM25Index().fit(["a planet"]).scores(3), TypeError, "queries must be a string or a list"),
    ],
)
def test_bad_input_is_refused(make, error, message):
    with pytest.raises(error, match=re.escape(message)):
        make()


def test_a_document_of_stop_words_only_is_kept_and_scores_zero():
    index = BM25Index(stopwords=ENGLISH_STOPWORDS).fit(["the planet", "it is the", "a red planet"])
    assert index.n_docs == 3 and index.doc_lengths.tolist() == [1, 0, 2]
    assert index.scores("planet")[1] == 0


def test_unknown_words_score_zero_and_leave_index_order():
    index = BM25Index().fit(rh.SAMPLE_DOCUMENTS)
    ids, scores = index.search("xyzzy", 3)
    assert ids.tolist() == [0, 1, 2] and scores.tolist() == [0, 0, 0]
    n_docs, n_words = len(rh.SAMPLE_DOCUMENTS), len(index.vocabulary)
    assert repr(index) == f"BM25Index(k1=1.5, b=0.75, {n_docs} documents, {n_words} words)"


def test_planet_question_finds_jupiter():
    index = BM25Index(stopwords=ENGLISH_STOPWORDS).fit(rh.SAMPLE_DOCUMENTS)
    ids, _ = index.search("which planet is the largest?", 1)
    assert rh.SAMPLE_DOCUMENTS[ids[0]].startswith("Jupiter")


def test_a_failed_fit_leaves_the_index_as_it_was():
    index = BM25Index().fit(rh.SAMPLE_DOCUMENTS)
    before = index.scores(rh.SAMPLE_QUESTION)
    with pytest.raises(ValueError, match="no document has a single token"):
        index.fit(["...", "?"])
    np.testing.assert_array_equal(index.scores(rh.SAMPLE_QUESTION), before)
