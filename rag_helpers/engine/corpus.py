"""The shipped corpus: Python's FAQ and HOWTO pages, with labelled questions.

The 27 pages of the Python 3.11 documentation's FAQ and HOWTO sections come with
the package (reStructuredText, PSF license: ``rag_helpers/data/PYTHON_DOCS_LICENSE.txt``).
Every FAQ entry is a question whose answer we know: the heading ("How do I copy
a file?") is the query, and the entry's body is the answer, a character span
``text[start:end]`` of its page. The headings were removed from the pages, so a
query never meets its own words there: retrieval has to find the answer by meaning.

A chunk answers a question when it comes from the same page and its span overlaps
the answer's span (``is_relevant``). That holds for any chunk size, so the same
labels score every chunking.

The questions are split once into a "dev" half (tune on it) and a "test" half
(measure on it, once). Unanswerable questions (about Python but not covered, or
off-topic) test whether a pipeline knows when to say "I don't know".

The data files are built by ``tools/build_python_docs_corpus.py``.

Notebook 08 reads the same files in a few lines (``rag_helpers/documents.py``:
``load_python_docs``, ``load_labelled_questions``, ``is_relevant``, which this
module uses as they are); here the loaders also check the data (checksums,
spans inside their page, unique ids, clear errors naming file and byte), and
``relevance_matrix`` compares every pair at once. The tests check both give the
same results.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Protocol

import numpy as np

from rag_helpers.documents import Document, LabelledQuestion, is_relevant

__all__ = [
    "LabelledQuestion",
    "UnanswerableQuestion",
    "load_python_docs",
    "load_labelled_questions",
    "load_unanswerable_questions",
    "answer_text",
    "is_relevant",
    "relevant_indices",
    "relevance_matrix",
]

CORPUS_FILE = "python_docs_corpus.json"
QUESTIONS_FILE = "python_docs_questions.json"
UNANSWERABLE_FILE = "unanswerable_questions.json"
SPLITS = ("all", "dev", "test")
KINDS = ("python", "off-topic")
_FORMAT_VERSION = 1
# Read through importlib.resources: works from a wheel, an editable install and Colab.
_DATA_DIR = resources.files("rag_helpers") / "data"


@dataclass(frozen=True)
class UnanswerableQuestion:
    """A question the corpus cannot answer; ``kind`` is "python" (not covered) or "off-topic"."""

    id: str
    question: str
    kind: str
    split: str


class Span(Protocol):
    """Anything located in a page: a ``Chunk``, a ``LabelledQuestion``."""

    source: str
    start: int
    end: int


# ---------------------------------------------------------------- loading

def load_python_docs() -> list[Document]:
    """The FAQ and HOWTO pages (27), one ``Document`` each, source like ``"faq/programming.rst"``."""
    return list(_corpus())


def load_labelled_questions(split: str = "all") -> list[LabelledQuestion]:
    """The labelled FAQ questions of one split ("dev", "test") or of both ("all"), in page order."""
    _check_split(split)
    return [q for q in _labelled() if split in ("all", q.split)]


def load_unanswerable_questions(split: str = "all", kind: str | None = None) -> list[UnanswerableQuestion]:
    """The unanswerable questions of one split ("dev", "test", "all"), optionally of one ``kind``."""
    _check_split(split)
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS} or None, got {kind!r}")
    return [q for q in _unanswerable()
            if split in ("all", q.split) and kind in (None, q.kind)]


def answer_text(question: LabelledQuestion) -> str:
    """The labelled answer itself: the text of the span ``[start, end)`` in its page."""
    return _by_source()[question.source].text[question.start:question.end]


# ---------------------------------------------------------------- relevance

def relevance_matrix(chunks: Sequence[Span], questions: Sequence[Span]) -> np.ndarray:
    """``(n_questions, n_chunks)`` bool: entry ``[i, j]`` is ``is_relevant(chunks[j], questions[i])``.

    One vectorized comparison for all pairs: fast for hundreds of questions
    against many thousands of chunks.
    """
    codes: dict[str, int] = {}     # each page name -> a small int, so NumPy compares ints
    c_src, c_start, c_end = _span_arrays(chunks, codes, "chunks")
    q_src, q_start, q_end = _span_arrays(questions, codes, "questions")
    # Two non-empty half-open spans share a character when each starts before the other ends.
    return ((q_src[:, None] == c_src[None, :])
            & (c_start[None, :] < q_end[:, None])
            & (q_start[:, None] < c_end[None, :])
            & (c_start < c_end)[None, :]
            & (q_start < q_end)[:, None])


def relevant_indices(chunks: Sequence[Span], question: Span) -> set[int]:
    """Indices of the chunks that overlap the question's answer (see ``is_relevant``).

    For many questions at once, ``relevance_matrix`` is faster.
    """
    return set(np.flatnonzero(relevance_matrix(chunks, [question])[0]).tolist())


def _span_arrays(spans: Sequence[Span], codes: dict[str, int], what: str) -> tuple[np.ndarray, ...]:
    """Source codes (new names are added to ``codes``), starts and ends: three ``(n,)`` int64 arrays."""
    try:
        src = np.array([codes.setdefault(s.source, len(codes)) for s in spans], dtype=np.int64)
        start = np.array([s.start for s in spans], dtype=np.int64)
        end = np.array([s.end for s in spans], dtype=np.int64)
    except AttributeError as err:
        raise TypeError(f"{what} must have .source, .start and .end (like Chunk): {err}") from None
    bad = np.flatnonzero(end < start)
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{what}[{i}] has end < start ({end[i]} < {start[i]})")
    return src, start, end


# ---------------------------------------------------------------- reading the data files
# Parsed once per process; the public loaders hand out fresh lists.

@lru_cache(maxsize=None)
def _corpus() -> tuple[Document, ...]:
    data = _read_json(CORPUS_FILE)
    docs = []
    for i, record in enumerate(_list(data, "documents", CORPUS_FILE)):
        where = f"{CORPUS_FILE}: documents[{i}]"
        source, text = _get(record, "source", str, where), _get(record, "text", str, where)
        if hashlib.sha256(text.encode("utf-8")).hexdigest() != _get(record, "sha256", str, where):
            raise ValueError(f"{where} ({source}): text does not match its sha256; the file is corrupt. "
                             "Reinstall rag-helpers or rebuild with tools/build_python_docs_corpus.py")
        docs.append(Document(text=text, source=source))
    if len({d.source for d in docs}) != len(docs):
        raise ValueError(f"{CORPUS_FILE}: two documents share a source name")
    return tuple(docs)


@lru_cache(maxsize=None)
def _by_source() -> dict[str, Document]:
    return {d.source: d for d in _corpus()}


@lru_cache(maxsize=None)
def _labelled() -> tuple[LabelledQuestion, ...]:
    data = _read_json(QUESTIONS_FILE)
    docs = _by_source()
    if _get(data, "corpus_sha256", str, QUESTIONS_FILE) != _corpus_digest(_corpus()):
        raise ValueError(f"{QUESTIONS_FILE} was built for another version of {CORPUS_FILE}: "
                         "rebuild both with tools/build_python_docs_corpus.py")
    questions = []
    for i, record in enumerate(_list(data, "questions", QUESTIONS_FILE)):
        where = f"{QUESTIONS_FILE}: questions[{i}]"
        q = LabelledQuestion(
            id=_get(record, "id", str, where), question=_get(record, "question", str, where),
            source=_get(record, "source", str, where), start=_get(record, "start", int, where),
            end=_get(record, "end", int, where), split=_get(record, "split", str, where))
        if q.source not in docs:
            raise ValueError(f"{where} ({q.id}): unknown source {q.source!r}")
        if not 0 <= q.start < q.end <= len(docs[q.source].text):
            raise ValueError(f"{where} ({q.id}): span [{q.start}, {q.end}) is empty or outside "
                             f"{q.source} ({len(docs[q.source].text)} characters)")
        _check_record_split(q.split, where)
        questions.append(q)
    _check_unique_ids(questions, QUESTIONS_FILE)
    return tuple(questions)


@lru_cache(maxsize=None)
def _unanswerable() -> tuple[UnanswerableQuestion, ...]:
    data = _read_json(UNANSWERABLE_FILE)
    questions = []
    for i, record in enumerate(_list(data, "questions", UNANSWERABLE_FILE)):
        where = f"{UNANSWERABLE_FILE}: questions[{i}]"
        q = UnanswerableQuestion(
            id=_get(record, "id", str, where), question=_get(record, "question", str, where),
            kind=_get(record, "kind", str, where), split=_get(record, "split", str, where))
        if q.kind not in KINDS:
            raise ValueError(f"{where} ({q.id}): kind must be one of {KINDS}, got {q.kind!r}")
        _check_record_split(q.split, where)
        questions.append(q)
    _check_unique_ids(questions, UNANSWERABLE_FILE)
    return tuple(questions)


def _read_json(name: str) -> dict[str, Any]:
    """One data file, parsed; a clear error naming the file and the place when it is bad."""
    try:
        raw = (_DATA_DIR / name).read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"rag_helpers/data/{name} is missing: reinstall rag-helpers "
                                "(or rebuild it with tools/build_python_docs_corpus.py)") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{name}: not UTF-8 at byte offset {err.start}; the file is corrupt") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        byte = len(text[:err.pos].encode("utf-8"))
        raise ValueError(f"{name}: corrupt JSON at line {err.lineno}, column {err.colno} "
                         f"(byte offset {byte}): {err.msg}") from None
    if not isinstance(data, dict) or data.get("format_version") != _FORMAT_VERSION:
        raise ValueError(f"{name}: expected a JSON object with format_version {_FORMAT_VERSION}")
    return data


def _get(record: Any, key: str, kind: type, where: str) -> Any:
    value = record.get(key) if isinstance(record, dict) else None
    # bool is an int in Python; a span of True..False is still corrupt data.
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"{where}: {key!r} must be a {kind.__name__}, got {value!r}")
    return value


def _list(data: dict[str, Any], key: str, name: str) -> list[Any]:
    if not isinstance(data.get(key), list) or not data[key]:
        raise ValueError(f"{name}: {key!r} must be a non-empty list")
    return data[key]


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def _check_record_split(split: str, where: str) -> None:
    if split not in ("dev", "test"):
        raise ValueError(f"{where}: split must be 'dev' or 'test', got {split!r}")


def _check_unique_ids(questions: Sequence[LabelledQuestion | UnanswerableQuestion], name: str) -> None:
    seen: set[str] = set()
    for q in questions:
        if q.id in seen:
            raise ValueError(f"{name}: the id {q.id!r} occurs twice")
        seen.add(q.id)


def _corpus_digest(documents: Sequence[Document]) -> str:
    """SHA-256 over every (source, text) pair, as the build script computes it."""
    h = hashlib.sha256()
    for d in documents:
        h.update(d.source.encode("utf-8") + b"\0" + d.text.encode("utf-8") + b"\0")
    return h.hexdigest()
