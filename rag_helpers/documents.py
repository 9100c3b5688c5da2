# Generated from notebooks/08_your_own_documents.ipynb by tools/nbexport.py: edit the notebook, not this file.
# Each block below is one `#| export` cell of the notebook, verbatim, in order.

"""Notebook 08: your own documents. Load texts, cut them into chunks of the encoder's tokens, keep their source.

The encoder reads a fixed number of tokens (all-MiniLM-L6-v2: 256, [CLS] and
[SEP] included) and silently drops the rest. So a long page is cut into
chunks that each fit, overlapping a little, and every chunk remembers where it
lies in its file, so that a retrieved chunk can cite ``path:line``.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

DATA = resources.files("rag_helpers") / "data"   # the files that ship with the package


@dataclass(frozen=True)
class Document:
    """One loaded text and where it came from: ``source`` a path, ``page`` a PDF page (None for a text file)."""

    text: str
    source: str
    page: int | None = None


@dataclass(frozen=True)
class LabelledQuestion:
    """A question and where its answer lies: ``text[start:end]`` of the page ``source``; ``split`` "dev" or "test"."""

    id: str
    question: str
    source: str
    start: int
    end: int
    split: str


def load_python_docs() -> list[Document]:
    """The FAQ and HOWTO pages of the Python 3.11 documentation (reStructuredText), one Document each."""
    data = json.loads((DATA / "python_docs_corpus.json").read_text(encoding="utf-8"))
    return [Document(record["text"], record["source"]) for record in data["documents"]]


def load_labelled_questions(split: str = "all") -> list[LabelledQuestion]:
    """The FAQ's own questions with their answer's span: ``split`` "dev" (tune on it), "test" or "all"."""
    data = json.loads((DATA / "python_docs_questions.json").read_text(encoding="utf-8"))
    fields = ("id", "question", "source", "start", "end", "split")
    return [LabelledQuestion(*(record[f] for f in fields))
            for record in data["questions"] if split in ("all", record["split"])]


def simple_chunks(text: str, tokenizer, chunk_tokens: int = 200, overlap: int = 40) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` of fixed windows of ``chunk_tokens`` tokens, ``overlap`` tokens apart.

    tokenizer: the encoder's fast tokenizer (``encoder.tokenizer``); 0 <= overlap < chunk_tokens.
    """
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True,
                        verbose=False)["offset_mapping"]         # (start, end) of each token in text
    spans, first = [], 0
    while first < len(offsets):
        last = min(first + chunk_tokens, len(offsets))           # one past the window's last token
        spans.append((offsets[first][0], offsets[last - 1][1]))
        if last == len(offsets):
            break
        first = last - overlap                                    # step back: the overlap
    return spans


# How good a place to end a chunk is each gap between two tokens. Higher is better.
WORD_PIECE = 0   # inside a word: "un|believable"
PUNCTUATION = 1  # between a word and its punctuation, no space: "world|."
WORD = 2         # whitespace between words (a single line break too: text is often hard-wrapped)
SENTENCE = 3     # after ". ", "! ", "? " (or a CJK full stop, which no space follows)
PARAGRAPH = 4    # a blank line; also the start and the end of the text

SENTENCE_ENDS = frozenset(".!?\u2026")              # ... and the ellipsis
CJK_SENTENCE_ENDS = frozenset("\u3002\uff01\uff1f")


def boundary_levels(text: str, offsets: Sequence[tuple[int, int]], word_ids: Sequence[int | None]) -> list[int]:
    """How good a place to cut each gap between tokens is: ``n + 1`` levels for ``n`` tokens.

    ``offsets[i]`` is token i's ``(start, end)`` in ``text``, ``word_ids[i]`` the word it belongs to
    (both from a fast tokenizer). ``levels[j]`` rates a cut just before token j; the two ends of the
    text (``levels[0]`` and ``levels[n]``) are ``PARAGRAPH``.
    """
    n = len(offsets)
    levels = [PARAGRAPH] * (n + 1)
    for j in range(1, n):
        previous = text[offsets[j - 1][0]:offsets[j - 1][1]]
        gap = text[offsets[j - 1][1]:offsets[j][0]]   # whitespace, or characters the tokenizer drops
        if word_ids[j] is not None and word_ids[j] == word_ids[j - 1]:
            levels[j] = WORD_PIECE
        elif gap.count("\n") >= 2:
            levels[j] = PARAGRAPH
        elif previous in CJK_SENTENCE_ENDS:
            levels[j] = SENTENCE
        elif any(ch.isspace() for ch in gap):
            # A full stop right after a number is a list item ("2.") or a section ("1.3."), not a sentence end.
            after_number = j >= 2 and offsets[j - 2][1] == offsets[j - 1][0] and \
                text[offsets[j - 2][0]:offsets[j - 2][1]].isdigit()
            levels[j] = SENTENCE if previous in SENTENCE_ENDS and not after_number else WORD
        else:
            levels[j] = PUNCTUATION
    return levels


def token_windows(levels: Sequence[int], chunk_tokens: int, overlap: int) -> list[tuple[int, int]]:
    """Cut ``n = len(levels) - 1`` tokens into windows ``[start, end)`` of at most ``chunk_tokens`` tokens.

    Each window ends at the best boundary (highest level, then the latest) among the ends that
    keep it at least half full; the next one starts at most ``overlap`` tokens before that end, at
    the earliest word boundary there. So neighbours share at most ``overlap`` tokens, no token is
    left out, and every window moves forward.
    """
    n = len(levels) - 1
    windows = []
    start = 0
    while start < n:
        if n - start <= chunk_tokens:
            end = n                                   # the rest fits: the last window
        else:
            # At least half a window (and more than the overlap, so that we move on).
            shortest = start + max(chunk_tokens // 2, overlap + 1)
            end = max(range(shortest, start + chunk_tokens + 1), key=lambda j: (levels[j], j))
        windows.append((start, end))
        if end == n:
            break
        earliest = max(end - overlap, start + 1)
        # Start on a word if the overlap holds one (the earliest such), else at the cut itself.
        start = max(range(earliest, end + 1), key=lambda j: (min(levels[j], WORD), -j))
    return windows


def chunk_text(text: str, tokenizer, chunk_tokens: int = 200, overlap: int = 40) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` of the chunks of ``text``: at most ``chunk_tokens`` tokens each.

    Like ``simple_chunks``, but each chunk ends at the best boundary of its window (a paragraph, a
    sentence, a word) and the next one starts on a word. tokenizer: the encoder's fast tokenizer.
    """
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    offsets = encoding["offset_mapping"]                   # (start, end) of each token in text
    levels = boundary_levels(text, offsets, encoding.word_ids())
    return [(offsets[start][0], offsets[end - 1][1]) for start, end in token_windows(levels, chunk_tokens, overlap)]


def read_text_files(folder: str | Path) -> list[Document]:
    """Every .txt, .md and .rst file in ``folder`` and its sub-folders, as a Document each.

    Entries are read in order of their names, folder by folder, so the same folder always gives the
    same list. Names starting with a dot (.git, editor files) are left out, and so are empty files.
    """
    documents = []
    for entry in sorted(Path(folder).iterdir(), key=lambda path: path.name):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            documents += read_text_files(entry)
        elif entry.suffix.lower() in (".txt", ".md", ".rst"):
            # Bytes decoded as they are: "\r\n" stays two characters, so an offset maps back to the file.
            text = entry.read_bytes().decode("utf-8").removeprefix("\ufeff")   # without a byte-order mark
            if text.strip():
                documents.append(Document(text, str(entry)))
    return documents


@dataclass(frozen=True)
class Chunk:
    """A piece of a Document: ``text == document.text[start:end]``, starting on line ``line`` (1-based)."""

    text: str
    source: str
    start: int
    end: int
    line: int = 1
    page: int | None = None

    @property
    def location(self) -> str:
        """Where to cite it: ``path:line``, or ``path, page N`` for a PDF page."""
        return f"{self.source}, page {self.page}" if self.page is not None else f"{self.source}:{self.line}"


def chunk_documents(documents: Sequence[Document], tokenizer, chunk_tokens: int = 200,
                    overlap: int = 40) -> list[Chunk]:
    """Every document cut by ``chunk_text``, in order; each Chunk keeps its source, span, line and page."""
    chunks = []
    for document in documents:
        for start, end in chunk_text(document.text, tokenizer, chunk_tokens, overlap):
            line = 1 + document.text.count("\n", 0, start)   # the line breaks before the chunk, plus one
            chunks.append(Chunk(document.text[start:end], document.source, start, end, line, document.page))
    return chunks


def is_relevant(chunk: Chunk, question: LabelledQuestion) -> bool:
    """Does the chunk hold part of the labelled answer? Same page, and at least one shared character.

    Spans are half-open, ``[start, end)``: a chunk that ends where the answer starts shares nothing.
    """
    return chunk.source == question.source and max(chunk.start, question.start) < min(chunk.end, question.end)
