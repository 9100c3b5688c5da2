"""The shipped Python-docs corpus, its labelled and unanswerable questions, and relevance."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rag_helpers.engine import corpus
from rag_helpers.engine.chunking import Chunk
from rag_helpers.engine.corpus import LabelledQuestion

ROOT = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = ROOT / "tools" / "build_python_docs_corpus.py"
DOCS_SOURCES = Path("/usr/share/doc/python3.11/html/_sources")
GENERATED = ("python_docs_corpus.json", "python_docs_questions.json", "PYTHON_DOCS_LICENSE.txt", "README.md")
DATA = resources.files("rag_helpers") / "data"


def squash(text: str) -> str:
    """Lower case, whitespace runs as one space: a line break in the corpus hides nothing."""
    return " ".join(text.lower().split())


def sha_split(ids: list[str]) -> dict[str, str]:
    """The documented split rule, written out again: ids by SHA-256, first half dev."""
    ordered = sorted(ids, key=lambda i: hashlib.sha256(i.encode()).hexdigest())
    return {i: "dev" if n < len(ordered) // 2 else "test" for n, i in enumerate(ordered)}


@pytest.fixture(scope="module")
def docs():
    return corpus.load_python_docs()


@pytest.fixture(scope="module")
def haystack(docs):
    return "\n".join(squash(d.text) for d in docs)


@pytest.fixture(scope="module")
def questions():
    return corpus.load_labelled_questions()


def load_build_script():
    spec = importlib.util.spec_from_file_location("build_python_docs_corpus", BUILD_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module      # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- the corpus

def test_corpus_is_the_faq_and_howto_pages(docs):
    sources = [d.source for d in docs]
    assert len(sources) == len(set(sources)) >= 25
    assert all(s.startswith(("faq/", "howto/")) and s.endswith(".rst") for s in sources)
    assert "faq/programming.rst" in sources and "howto/regex.rst" in sources
    assert not any(s.endswith("/index.rst") for s in sources)
    assert sum(len(d.text) for d in docs) > 500_000
    assert all(d.page is None and d.text.strip() for d in docs)


def test_the_checked_loaders_give_notebook_08s_results(docs, questions):
    # rag_helpers/documents.py (notebook 08) reads the same files in a few lines, without checks.
    from rag_helpers import documents as taught

    assert docs == taught.load_python_docs() and len(docs) == 27
    for split in ("all", "dev", "test"):
        assert corpus.load_labelled_questions(split) == taught.load_labelled_questions(split)
    assert corpus.is_relevant is taught.is_relevant and corpus.LabelledQuestion is taught.LabelledQuestion


def test_license_notice_ships_with_the_data():
    text = (DATA / "PYTHON_DOCS_LICENSE.txt").read_text(encoding="utf-8")
    assert "Python Software Foundation" in text
    assert "PSF LICENSE AGREEMENT FOR PYTHON 3.11" in text
    assert "|release|" not in text
    assert "Summary of the changes made" in text     # clause 3 of the PSF license asks for it


# ---------------------------------------------------------------- labelled questions

def test_at_least_150_labelled_questions(questions):
    assert len(questions) >= 150
    assert len({q.id for q in questions}) == len(questions)
    assert all(isinstance(q, LabelledQuestion) for q in questions)


def test_answer_spans_are_non_empty_and_inside_their_document(docs, questions):
    by_source = {d.source: d.text for d in docs}
    for q in questions:
        text = by_source[q.source]
        assert 0 <= q.start < q.end <= len(text), q.id
        answer = corpus.answer_text(q)
        assert answer == text[q.start:q.end]
        assert answer.strip() == answer and answer, q.id       # trimmed, non-empty


def test_answers_do_not_run_into_the_next_section(questions):
    for q in questions:
        answer = corpus.answer_text(q)
        assert "\n.. _" not in answer and not answer.startswith(".. _"), q.id   # next entry's label
        assert "\n------" not in answer and "\n======" not in answer, q.id      # a section heading


def test_no_query_occurs_verbatim_in_the_corpus(haystack, questions):
    for q in questions:
        assert squash(q.question) not in haystack, q.id
        assert squash(q.question).rstrip("?.") not in haystack, q.id


def test_headings_the_build_removed_are_really_gone(haystack):
    # Two headings checked by hand against the original FAQ source.
    assert "unboundlocalerror when the variable has a value" not in haystack
    assert "how do i copy a file" not in haystack
    assert "core language" in haystack       # category titles are kept


def test_the_record_of_dropped_questions_adds_up(questions):
    data = json.loads((DATA / "python_docs_questions.json").read_text(encoding="utf-8"))
    assert data["kept"] == len(questions)
    assert data["faq_entries"] == data["kept"] + data["dropped_count"] == len(questions) + len(data["dropped"])
    assert all(d["reason"] and d["where"].startswith("faq/") for d in data["dropped"])
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    assert f"{data['kept']} were kept and {data['dropped_count']} dropped" in readme


def test_dev_and_test_halves_are_disjoint_complete_and_reproducible(questions):
    dev, test = corpus.load_labelled_questions("dev"), corpus.load_labelled_questions("test")
    dev_ids, test_ids = {q.id for q in dev}, {q.id for q in test}
    assert dev_ids and test_ids and not dev_ids & test_ids
    assert dev_ids | test_ids == {q.id for q in questions}
    assert abs(len(dev) - len(test)) <= 1
    expected = sha_split([q.id for q in questions])
    assert all(q.split == expected[q.id] for q in questions)
    assert load_build_script().split_of([q.id for q in questions]) == expected


def test_split_and_kind_arguments_are_checked():
    with pytest.raises(ValueError, match="split must be one of"):
        corpus.load_labelled_questions("train")
    with pytest.raises(ValueError, match="split must be one of"):
        corpus.load_unanswerable_questions("Dev")
    with pytest.raises(ValueError, match="kind must be one of"):
        corpus.load_unanswerable_questions(kind="cooking")


# ---------------------------------------------------------------- unanswerable questions

def test_unanswerable_questions(questions, haystack):
    unanswerable = corpus.load_unanswerable_questions()
    assert len(unanswerable) >= 40
    by_kind = {k: [q for q in unanswerable if q.kind == k] for k in corpus.KINDS}
    assert len(by_kind["python"]) >= 20 and len(by_kind["off-topic"]) >= 20
    labelled = {squash(q.question) for q in questions}
    assert not any(squash(q.question) in labelled for q in unanswerable)
    for kind, group in by_kind.items():
        expected = sha_split([q.id for q in group])
        assert all(q.split == expected[q.id] for q in group), kind
        assert {q.split for q in group} == {"dev", "test"}
        assert corpus.load_unanswerable_questions("dev", kind=kind) == [q for q in group if q.split == "dev"]


def test_unanswerable_answers_are_not_in_the_corpus(haystack):
    # Each entry names the words an answer would need; none may occur in the corpus.
    data = json.loads((DATA / "unanswerable_questions.json").read_text(encoding="utf-8"))
    for record in data["questions"]:
        assert record["not_in_corpus"], record["id"]
        for word in record["not_in_corpus"]:
            assert squash(word) not in haystack, (record["id"], word)


# ---------------------------------------------------------------- relevance

def span(source: str, start: int, end: int) -> Chunk:
    return Chunk(text="x" * (end - start), source=source, start=start, end=end)


QUESTION = LabelledQuestion(id="q", question="?", source="faq/a.rst", start=100, end=200, split="dev")
CASES = [  # (chunk, relevant?)
    (span("faq/a.rst", 0, 100), False),     # ends exactly where the answer starts
    (span("faq/a.rst", 0, 101), True),      # one character of overlap
    (span("faq/a.rst", 199, 300), True),    # the answer's last character
    (span("faq/a.rst", 200, 300), False),   # starts exactly where the answer ends
    (span("faq/a.rst", 150, 160), True),    # inside the answer
    (span("faq/a.rst", 0, 1000), True),     # contains the answer
    (span("faq/b.rst", 100, 200), False),   # same span, another page
    (span("faq/a.rst", 150, 150), False),   # empty chunk
]


@pytest.mark.parametrize("chunk, expected", CASES)
def test_is_relevant_on_hand_made_chunks(chunk, expected):
    assert corpus.is_relevant(chunk, QUESTION) is expected


def test_relevant_indices_and_matrix_on_hand_made_chunks():
    chunks = [c for c, _ in CASES]
    expected = {i for i, (_, relevant) in enumerate(CASES) if relevant}
    assert corpus.relevant_indices(chunks, QUESTION) == expected == {1, 2, 4, 5}
    matrix = corpus.relevance_matrix(chunks, [QUESTION, QUESTION])
    assert matrix.shape == (2, len(CASES)) and matrix.dtype == bool
    assert set(np.flatnonzero(matrix[1]).tolist()) == expected
    assert corpus.relevance_matrix([], [QUESTION]).shape == (1, 0)


def test_relevance_rejects_bad_spans():
    with pytest.raises(ValueError, match=r"chunks\[1\] has end < start"):
        corpus.relevance_matrix([span("a", 0, 5), Chunk("", "a", 9, 3)], [QUESTION])
    with pytest.raises(TypeError, match="must have .source, .start and .end"):
        corpus.relevant_indices(["just a string"], QUESTION)


spans = st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 50), st.integers(0, 50)).map(
    lambda t: span(t[0], min(t[1], t[2]), max(t[1], t[2])))


@given(chunks=st.lists(spans, max_size=30), targets=st.lists(spans, min_size=1, max_size=5))
def test_relevance_matrix_equals_pairwise_is_relevant(chunks, targets):
    matrix = corpus.relevance_matrix(chunks, targets)
    brute = np.array([[corpus.is_relevant(c, q) for c in chunks] for q in targets], dtype=bool).reshape(
        len(targets), len(chunks))
    np.testing.assert_array_equal(matrix, brute)
    # Overlap means a shared character: the brute force by character sets agrees too.
    for i, q in enumerate(targets):
        for j, c in enumerate(chunks):
            shared = c.source == q.source and set(range(c.start, c.end)) & set(range(q.start, q.end))
            assert matrix[i, j] == bool(shared)


def test_every_question_has_a_relevant_chunk_at_any_chunk_size(docs, questions):
    for size in (200, 1000, 4000):
        chunks = [Chunk(d.text[s:s + size], d.source, s, min(s + size, len(d.text)))
                  for d in docs for s in range(0, len(d.text), size)]
        matrix = corpus.relevance_matrix(chunks, questions)
        assert matrix.any(axis=1).all(), size
        # Together, the relevant chunks of a question hold its answer.
        q = questions[0]
        hits = sorted(np.flatnonzero(matrix[0]).tolist())
        assert "".join(chunks[j].text for j in hits).find(corpus.answer_text(q)[:150]) >= 0


# ---------------------------------------------------------------- bad data files

@pytest.fixture
def data_copy(tmp_path, monkeypatch):
    """A writable copy of the data folder that the loaders read instead of the packaged one."""
    for name in (corpus.CORPUS_FILE, corpus.QUESTIONS_FILE, corpus.UNANSWERABLE_FILE):
        (tmp_path / name).write_bytes((DATA / name).read_bytes())
    caches = (corpus._corpus, corpus._by_source, corpus._labelled, corpus._unanswerable)
    for cache in caches:
        cache.cache_clear()
    monkeypatch.setattr(corpus, "_DATA_DIR", tmp_path)
    yield tmp_path
    for cache in caches:
        cache.cache_clear()


def edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def test_a_truncated_file_names_file_line_and_byte(data_copy):
    path = data_copy / corpus.QUESTIONS_FILE
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(ValueError, match=r"python_docs_questions.json: corrupt JSON at line \d+, "
                                         r"column \d+ \(byte offset \d+\)"):
        corpus.load_labelled_questions()


def test_an_edited_document_is_caught_by_its_checksum(data_copy):
    edit_json(data_copy / corpus.CORPUS_FILE,
              lambda d: d["documents"][3].update(text=d["documents"][3]["text"] + " "))
    with pytest.raises(ValueError, match=r"documents\[3\] .*does not match its sha256"):
        corpus.load_python_docs()


def test_a_span_outside_its_document_is_refused(data_copy):
    edit_json(data_copy / corpus.QUESTIONS_FILE, lambda d: d["questions"][7].update(end=10**9))
    with pytest.raises(ValueError, match=r"questions\[7\] .*outside"):
        corpus.load_labelled_questions()


def test_a_wrong_field_type_and_a_bad_split_are_refused(data_copy):
    edit_json(data_copy / corpus.UNANSWERABLE_FILE, lambda d: d["questions"][2].update(split="train"))
    with pytest.raises(ValueError, match=r"questions\[2\]: split must be 'dev' or 'test'"):
        corpus.load_unanswerable_questions()
    edit_json(data_copy / corpus.QUESTIONS_FILE, lambda d: d["questions"][0].update(start="12"))
    with pytest.raises(ValueError, match=r"questions\[0\]: 'start' must be a int"):
        corpus.load_labelled_questions()


def test_a_missing_file_says_what_to_do(data_copy):
    (data_copy / corpus.UNANSWERABLE_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="unanswerable_questions.json is missing"):
        corpus.load_unanswerable_questions()


# ---------------------------------------------------------------- the build script

needs_docs = pytest.mark.skipif(
    not (DOCS_SOURCES / "faq").is_dir(),
    reason=f"{DOCS_SOURCES} is absent: the Python docs sources come with `apt-get install python3.11-doc`")


@needs_docs
def test_the_build_is_deterministic(tmp_path):
    # Two separate processes with different string-hash seeds: a build that
    # depended on set or dict order (or on time, or on the process) writes
    # different bytes. One call compared with itself in one process could not tell.
    for seed in ("1", "2"):
        result = subprocess.run([sys.executable, str(BUILD_SCRIPT), "--out", str(tmp_path / seed)],
                                capture_output=True, text=True, timeout=300,
                                env={**os.environ, "PYTHONHASHSEED": seed})
        assert result.returncode == 0, result.stderr
    for name in GENERATED:
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes(), name


@needs_docs
def test_the_build_reproduces_the_committed_data(tmp_path):
    committed = json.loads((DATA / "python_docs_corpus.json").read_text(encoding="utf-8"))["python_docs_version"]
    installed = load_build_script().read_version(DOCS_SOURCES)
    if installed != committed:
        pytest.skip(f"the installed docs are Python {installed}; the data was built from {committed}")
    result = subprocess.run([sys.executable, str(BUILD_SCRIPT), "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "kept" in result.stdout and "dropped" in result.stdout
    for name in GENERATED:
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), name


def test_the_build_refuses_a_missing_source_folder(tmp_path):
    with pytest.raises(SystemExit, match="python3.11-doc"):
        load_build_script().build(tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()
