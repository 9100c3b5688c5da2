"""Chunking: cutting long documents into pieces the encoder reads whole.

Why chunk at all? all-MiniLM-L6-v2 reads at most 256 tokens (word pieces):
``[CLS]``, 254 pieces of text, ``[SEP]``. Give it a longer text and
sentence-transformers cuts it at 256 without a word of warning: the rest of
the page never reaches the vector, so a question about it cannot find it. So
we cut each document into chunks of at most ``chunk_tokens`` tokens (default
200, and never more than the window allows), embed every chunk, and retrieve
chunks instead of whole files.

How we cut, in three steps:

1. Tokenize the whole document once, with the encoder's own tokenizer, and
   keep each token's character span in the text (``offset_mapping``).
2. Give every place between two tokens a *boundary level*: a blank line
   between paragraphs is the best place to cut (``PARAGRAPH``), then the end of
   a sentence (``SENTENCE``), then a space between words (``WORD``), then the
   seam between a word and its punctuation (``PUNCTUATION``); the worst is the
   middle of a word, between two of its word pieces (``WORD_PIECE``).
3. Walk through the tokens: each chunk ends at the best boundary in the second
   half of its window (on a tie, the later one: longer chunks), and the next
   chunk starts up to ``overlap`` tokens earlier, at the first word boundary
   there, so that a sentence cut in two is still read whole in one chunk.

Notebook 08 builds these steps (``rag_helpers/documents.py``: ``boundary_levels``,
``token_windows``, ``chunk_text``, ``chunk_documents``). This module uses its
levels and ``Chunk`` as they are and adds what a learner can skip: argument
checks, long texts tokenized in pieces (much faster), and a veto that shortens
a window that starts or ends inside a word and counts more tokens read alone.
On plain text the chunks are the notebook's, exactly (tests/test_chunking.py).

A chunk's text is the document's text from its first token to its last one,
``document.text[start:end]``: what we embed is exactly what we quote and
cite. Counting with the real tokenizer matters: 200 tokens are about 150
English words, fewer for code or names the vocabulary does not know.
"""
from __future__ import annotations

import numbers
import re
from collections.abc import Callable, Sequence

# What notebook 08 teaches, used as it is: the Chunk, the boundary levels and
# how each gap is rated. The windows with a ``fits`` veto, the checks and the
# fast tokenization of long texts are this module's.
from rag_helpers import documents as taught
from rag_helpers.incremental import headings, section_at
from rag_helpers.documents import (
    PARAGRAPH,
    PUNCTUATION,
    SENTENCE,
    WORD,
    WORD_PIECE,
    Chunk,
    Document,
    boundary_levels,
)

__all__ = [
    "Chunk",
    "chunk_sections",
    "DEFAULT_CHUNK_TOKENS",
    "DEFAULT_OVERLAP",
    "PARAGRAPH",
    "PUNCTUATION",
    "SENTENCE",
    "WORD",
    "WORD_PIECE",
    "boundary_levels",
    "check_chunk_sizes",
    "chunk_documents",
    "chunk_text",
    "token_windows",
    "tokenize_with_offsets",
]

DEFAULT_CHUNK_TOKENS = 200
DEFAULT_OVERLAP = 40

_WORD_SEPARATOR = re.compile("[ \n\t\r]")  # what BERT splits words at (not every str.isspace() character)

#: A token spanning more characters than this (and than ``chunk_tokens``) is a
#: run of text without spaces (1 MB of "aaaa", base64, minified code): BERT's
#: WordPiece turns any word longer than 100 characters into one ``[UNK]``.
#: Such a run is cut by characters (see ``chunk_text``).
LONGEST_WORD_CHARS = 100


def token_windows(
    levels: Sequence[int],
    chunk_tokens: int,
    overlap: int,
    fits: Callable[[int, int], bool] | None = None,
) -> list[tuple[int, int]]:
    """Cut ``n = len(levels) - 1`` tokens into windows ``[start, end)`` of at most ``chunk_tokens``.

    Each window ends at the best boundary (highest level, then latest) among
    the ends that keep it at least half full; the next one starts at most
    ``overlap`` tokens before that end, at the earliest word boundary there.
    Consecutive windows therefore share at most ``overlap`` tokens, leave no
    token out, and every window moves forward. ``fits(start, end)``, if
    given, may refuse a window; it is then shortened a token at a time (a
    single token is never refused).
    """
    if fits is None:  # nothing to veto: exactly notebook 08's windows
        return taught.token_windows(levels, chunk_tokens, overlap)
    n = len(levels) - 1
    windows: list[tuple[int, int]] = []
    start = covered = 0  # tokens before `covered` are in a window already
    while start < n:
        if n - start <= chunk_tokens:
            end = n
        else:
            # At least half a window (and more than the overlap, so that we move on).
            shortest = start + max(chunk_tokens // 2, overlap + 1)
            end = max(range(shortest, start + chunk_tokens + 1), key=lambda j: (levels[j], j))
        # A refused window is shortened at its end while it still reaches new
        # tokens, then at its start (giving up overlap): never a gap, always forward.
        while end - start > 1 and not fits(start, end):
            if end > covered + 1:
                end -= 1
            else:
                start += 1
        windows.append((start, end))
        covered = end
        if end == n:
            break
        earliest = max(end - overlap, start + 1)
        # Start on a word if the overlap holds one (the earliest such), else at the cut itself.
        start = max(range(earliest, end + 1), key=lambda j: (min(levels[j], WORD), -j))
    return windows


def check_chunk_sizes(chunk_tokens: object, overlap: object, max_tokens: int | None = None) -> tuple[int, int]:
    """Return ``(chunk_tokens, overlap)`` as ints if ``0 <= overlap < chunk_tokens <= max_tokens``; raise otherwise."""
    for name, value in (("chunk_tokens", chunk_tokens), ("overlap", overlap)):
        # bool is an Integral in Python, but chunk_tokens=True is always a mistake.
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    chunk_tokens, overlap = int(chunk_tokens), int(overlap)
    if chunk_tokens < 1:
        raise ValueError(f"chunk_tokens must be at least 1, got {chunk_tokens}")
    if max_tokens is not None and chunk_tokens > max_tokens:
        raise ValueError(
            f"chunk_tokens={chunk_tokens} is more than the encoder reads: at most {max_tokens} tokens of text "
            f"fit in its window, with its special tokens such as [CLS] and [SEP] (the rest would be silently "
            f"ignored)")
    if overlap < 0:
        raise ValueError(f"overlap must be 0 or more, got {overlap}")
    if overlap >= chunk_tokens:
        raise ValueError(f"overlap={overlap} must be smaller than chunk_tokens={chunk_tokens}")
    return chunk_tokens, overlap


def _tokenizer_and_limit(tokenizer):
    """The tokenizer itself, and how many text tokens fit in the encoder's window (None: no known limit).

    ``tokenizer`` may also be a SentenceTransformer: its ``max_seq_length``
    (256 for all-MiniLM-L6-v2) is the window that matters, and may be smaller
    than its tokenizer's ``model_max_length``.
    """
    window = None
    if hasattr(tokenizer, "tokenizer") and hasattr(tokenizer, "max_seq_length"):
        tokenizer, window = tokenizer.tokenizer, tokenizer.max_seq_length
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError(f"chunking needs a fast Hugging Face tokenizer (it reads token offsets), "
                        f"got {type(tokenizer).__name__}")
    if window is None:
        window = getattr(tokenizer, "model_max_length", None)
        if not isinstance(window, int) or window > 1_000_000:  # "no limit" is stored as a huge number
            return tokenizer, None
    return tokenizer, window - tokenizer.num_special_tokens_to_add(pair=False)  # [CLS] and [SEP] for BERT


#: Long texts are tokenized in pieces of about this many characters (see tokenize_with_offsets).
SEGMENT_CHARS = 10_000


def tokenize_with_offsets(
    text: str, tokenizer, segment_chars: int = SEGMENT_CHARS,
) -> tuple[list[tuple[int, int]], list[int]]:
    """Each token's ``(start, end)`` character offsets in ``text``, and its word number; no special tokens.

    What ``tokenizer(text, return_offsets_mapping=True)`` gives, from one
    (batched) tokenizer call, but faster on a long text: a fast tokenizer
    slows down on one huge string (on the machine this was written on, 1 MB
    took over 20 times as long as 100 kB), so we hand it pieces of about
    ``segment_chars`` characters, cut at spaces or line breaks (where it
    splits words anyway, so no token changes), and shift their offsets back.
    """
    starts = [0]
    while len(text) - starts[-1] > segment_chars:
        cut = _next_cut(text, starts[-1], segment_chars)
        if cut is None:
            break
        starts.append(cut)
    pieces = [text[a:b] for a, b in zip(starts, starts[1:] + [len(text)])]
    # verbose=False: a text longer than the window is what we expect here, no need to warn.
    encoding = tokenizer(pieces, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    offsets, word_ids, words_before = [], [], 0
    for i, piece_start in enumerate(starts):
        piece_words = encoding.word_ids(i)
        offsets += [(start + piece_start, end + piece_start) for start, end in encoding["offset_mapping"][i]]
        word_ids += [w + words_before for w in piece_words]
        words_before += max(piece_words, default=-1) + 1
    return offsets, word_ids


def _next_cut(text: str, start: int, size: int) -> int | None:
    """Where to end a piece that begins at ``start``: at a word separator, ``size // 2`` to ``size`` on."""
    low, high = start + size // 2, start + size
    for separator in ("\n\n", "\n", " "):  # a blank line if there is one, else a line break, else a space
        cut = text.rfind(separator, low, high)
        if cut >= 0:
            return cut
    found = _WORD_SEPARATOR.search(text, high)  # a stretch without any: the first separator after it
    return found.start() if found else None


def chunk_text(
    text: str,
    tokenizer,
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
    overlap: int = DEFAULT_OVERLAP,
) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` of the chunks of ``text``, in order.

    ``tokenizer`` is the encoder's fast tokenizer (``encoder.tokenizer``) or
    the SentenceTransformer itself. Each ``text[start:end]`` holds at most
    ``chunk_tokens`` tokens (counted by that tokenizer, special tokens not
    included), begins and ends on a token (no surrounding whitespace), and
    starts at most ``overlap`` tokens before the previous chunk ends. A text
    without tokens (empty, or only whitespace) gives ``[]``.

    A run of text without spaces longer than ``chunk_tokens`` characters (and
    than ``LONGEST_WORD_CHARS``) reads as a single token, ``[UNK]``; it is cut
    by characters into pieces of ``chunk_tokens`` characters, each a chunk on
    its own. A piece that short holds at most ``chunk_tokens`` tokens (every
    token covers at least one character), so it fits the window whatever
    the tokenizer makes of it, and no chunk of such a run is longer than
    ``chunk_tokens`` characters.

    A chunk that starts or ends inside a word is counted again on its own
    and shortened until it fits. One limit to that: a single word piece is
    never split, and read alone it may count more (all-MiniLM-L6-v2's
    "##ович" is 4 tokens as "ович"), so below ``chunk_tokens=4`` a chunk of
    one piece can exceed the size. Whole words count the same alone as in
    context, for WordPiece tokenizers like this one.
    """
    tokenizer, max_tokens = _tokenizer_and_limit(tokenizer)
    chunk_tokens, overlap = check_chunk_sizes(chunk_tokens, overlap, max_tokens)
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    offsets, word_ids = tokenize_with_offsets(text, tokenizer)
    offsets, word_ids, runs_before = _cut_long_runs(offsets, word_ids, max(chunk_tokens, LONGEST_WORD_CHARS),
                                                     chunk_tokens)
    levels = boundary_levels(text, offsets, word_ids)

    def fits(start: int, end: int) -> bool:
        if runs_before[end] != runs_before[start]:  # a piece of a long run is a chunk on its own
            return False
        # Whole words tokenize alike alone or in context. Part of a word may
        # not ("##bel" read on its own is "bel", maybe split otherwise), so
        # a chunk that starts or ends inside a word is counted again.
        if levels[start] != WORD_PIECE and levels[end] != WORD_PIECE:
            return True
        piece = text[offsets[start][0]:offsets[end - 1][1]]
        return len(tokenizer(piece, add_special_tokens=False, verbose=False)["input_ids"]) <= chunk_tokens

    windows = token_windows(levels, chunk_tokens, overlap, fits)
    return [(offsets[start][0], offsets[end - 1][1]) for start, end in windows]


def _cut_long_runs(
    offsets: list[tuple[int, int]], word_ids: list[int], longest: int, piece: int,
) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Tokens longer than ``longest`` characters cut into pieces of ``piece`` characters.

    Returns the new offsets and word ids (the pieces of one token keep its
    word: a cut between them is ``WORD_PIECE``, the worst place), and
    ``runs_before``: ``runs_before[j]`` is how many pieces come before token
    j, so that ``runs_before[end] - runs_before[start]`` counts them in a window.
    """
    if all(end - start <= longest for start, end in offsets):  # the usual case: nothing to cut
        return offsets, word_ids, [0] * (len(offsets) + 1)
    new_offsets, new_words, runs_before = [], [], [0]
    for (start, end), word in zip(offsets, word_ids):
        if end - start <= longest:
            new_offsets.append((start, end))
            new_words.append(word)
            runs_before.append(runs_before[-1])
            continue
        for a in range(start, end, piece):
            new_offsets.append((a, min(a + piece, end)))
            new_words.append(word)
            runs_before.append(runs_before[-1] + 1)
    return new_offsets, new_words, runs_before


def _line_breaks(text: str, start: int, end: int, has_cr: bool) -> int:
    """How many lines end in ``text[start:end]``: at ``\\n``, ``\\r\\n`` or, if ``has_cr``, a lone ``\\r``."""
    breaks = text.count("\n", start, end)
    if has_cr:  # rare: old Mac files, cut into lines at a lone \r (as str.splitlines() does)
        breaks += text.count("\r", start, end) - text.count("\r\n", start, end)
    return breaks


def chunk_documents(
    documents: Sequence[Document],
    tokenizer,
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
    overlap: int = DEFAULT_OVERLAP,
    *,
    progress: bool = False,
) -> list[Chunk]:
    """Cut every document into ``Chunk``s (see ``chunk_text``), in order; each keeps its source, line and page.

    A document that gives no token at all (only characters the tokenizer
    drops) raises ``ValueError`` naming it: it would vanish from the index.
    ``progress=True`` shows a tqdm bar over the documents.
    """
    if isinstance(documents, Document):
        documents = [documents]
    tokenizer_only, max_tokens = _tokenizer_and_limit(tokenizer)
    chunk_tokens, overlap = check_chunk_sizes(chunk_tokens, overlap, max_tokens)
    for i, document in enumerate(documents):
        if not isinstance(document, Document):
            raise TypeError(f"documents[{i}] is a {type(document).__name__}, not a Document")
    if progress:
        from tqdm.auto import tqdm

        documents = tqdm(documents, desc="chunking", unit="doc")

    chunks: list[Chunk] = []
    for document in documents:
        text = document.text
        spans = chunk_text(text, tokenizer, chunk_tokens, overlap)
        if not spans:
            where = document.source + (f", page {document.page}" if document.page is not None else "")
            raise ValueError(f"{where}: no tokens in this document for {type(tokenizer_only).__name__} "
                             f"(empty, or only characters it ignores)")
        line, counted_to, has_cr = 1, 0, "\r" in text
        for start, end in spans:  # starts only move forward: count the newlines once
            # Chunks start on a token, never between the \r and \n of a line break.
            line += _line_breaks(text, counted_to, start, has_cr)
            counted_to = start
            chunks.append(Chunk(text[start:end], document.source, start, end, line, document.page))
    return chunks


def chunk_sections(documents: Sequence[Document], chunks: Sequence[Chunk]) -> list[str | None]:
    """The heading each chunk starts under (notebook 12's ``headings``), one per chunk.

    ``chunks`` as ``chunk_documents(documents, ...)`` returns them: in document order. Where two
    documents share a name and page the chunks cannot be told apart by them: every section is None.
    """
    sections: list[str | None] = []
    position = 0
    for document in documents:
        heads = headings(document.text)
        while position < len(chunks) and chunks[position].source == document.source \
                and chunks[position].page == document.page:
            sections.append(section_at(heads, chunks[position].start))
            position += 1
    if len(sections) != len(chunks):
        return [None] * len(chunks)
    return sections
