"""Chunking by the encoder's own tokens: limits, coverage, overlap, boundaries, spans and lines."""
from __future__ import annotations

import random
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rag_helpers.engine.chunking import (
    LONGEST_WORD_CHARS,
    DEFAULT_CHUNK_TOKENS,
    DEFAULT_OVERLAP,
    PARAGRAPH,
    PUNCTUATION,
    SENTENCE,
    WORD,
    WORD_PIECE,
    Chunk,
    boundary_levels,
    check_chunk_sizes,
    chunk_documents,
    chunk_text,
    token_windows,
    tokenize_with_offsets,
)
from rag_helpers.engine.documents import Document, load_documents


@pytest.fixture(scope="module")
def tokenizer(encoder):
    return encoder.tokenizer


def offsets_of(tokenizer, text):
    return tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)["offset_mapping"]


def pieces_of(tokenizer, text, chunk_tokens):
    """``offsets_of``, with a token longer than ``chunk_tokens`` and 100 characters (a run without
    spaces, read as one [UNK]) cut into pieces of ``chunk_tokens`` characters, as ``chunk_text`` cuts it."""
    longest = max(chunk_tokens, LONGEST_WORD_CHARS)
    return [(a, min(a + chunk_tokens, e)) if e - s > longest else (s, e)
            for s, e in offsets_of(tokenizer, text)
            for a in (range(s, e, chunk_tokens) if e - s > longest else [s])]


def n_tokens_with_specials(tokenizer, text):
    """What the encoder reads for this text: [CLS] + pieces + [SEP]."""
    return len(tokenizer(text, verbose=False)["input_ids"])


# Random texts built from pieces that exercise every boundary: words the
# vocabulary knows, long words it splits into many pieces, sentence ends,
# list numbers, blank lines, CRLF, accents (combined and not), CJK, emoji,
# characters the tokenizer drops (zero-width space, soft hyphen, controls).
FRAGMENTS = [
    "The", "cat", "sat", "on", "the", "mat", "Jupiter", "is", "largest", ".", ",", "!", "?", ";", "(", ")", "'",
    " ", " ", " ", " ", "\n", "\n\n", "\r\n", "\t", "  \n \n", "2.", "1.3.", "e.g.",
    "unbelievably", "Pneumonoultramicroscopic", "xqzvbnrtk", "caf\u00e9", "nai\u0308ve", "e\u0301",
    "\u6771\u4eac", "\u3002", "\u200b", "\u00ad", "\x1b", "\U0001f642", "https://example.com/a_b?c=1",
    "x" * 120,
]
TEXTS = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=6)), max_size=160).map("".join)
# From 4 tokens up, since one word piece read alone is at most 4 tokens (see the test below).
SIZES = st.integers(4, 40).flatmap(lambda c: st.tuples(st.just(c), st.integers(0, c - 1)))


def test_a_lone_word_piece_reads_as_at_most_4_tokens(tokenizer):
    # Why SIZES starts at 4: the smallest chunk is one token, and a chunk that
    # starts inside a word ("##vb" of "xqzvbnrtk") is read as a word start ("vb").
    pieces = [token[2:] for token in tokenizer.get_vocab() if token.startswith("##")]
    counts = [len(ids) for ids in tokenizer(pieces, add_special_tokens=False)["input_ids"]]
    assert len(pieces) > 5000 and max(counts) == 4


@given(TEXTS, SIZES)
def test_chunks_cover_every_token_within_the_limit_and_overlap(tokenizer, text, sizes):
    chunk_tokens, overlap = sizes
    spans = chunk_text(text, tokenizer, chunk_tokens, overlap)
    offsets = pieces_of(tokenizer, text, chunk_tokens)  # the tokens; a run without spaces in pieces
    assert (spans == []) == (offsets == [])
    token_sets = []
    for start, end in spans:
        assert 0 <= start < end <= len(text)
        # Each chunk begins on a token's start and ends on a token's end: no surrounding blanks.
        assert any(s == start for s, _ in offsets) and any(e == end for _, e in offsets)
        inside = {i for i, (s, e) in enumerate(offsets) if start <= s and e <= end}
        assert len(inside) <= chunk_tokens
        # Counted again by the real tokenizer, as the encoder will read it, special tokens included.
        assert n_tokens_with_specials(tokenizer, text[start:end]) <= chunk_tokens + 2
        token_sets.append(inside)
    assert set().union(*token_sets) == set(range(len(offsets)))  # no token left out
    for (s1, e1), (s2, e2), a, b in zip(spans, spans[1:], token_sets, token_sets[1:]):
        assert s1 < s2 and e1 < e2  # always forward
        assert len(a & b) <= overlap


@given(st.lists(TEXTS, min_size=1, max_size=4), SIZES, st.sampled_from([None, 1, 7]))
def test_chunk_documents_keeps_text_source_line_and_page(tokenizer, texts, sizes, page):
    chunk_tokens, overlap = sizes
    documents = [Document(t, f"doc{i}.txt", page) for i, t in enumerate(texts) if offsets_of(tokenizer, t)]
    chunks = chunk_documents(documents, tokenizer, chunk_tokens, overlap)
    expected_spans = [(d, span) for d in documents for span in chunk_text(d.text, tokenizer, chunk_tokens, overlap)]
    assert len(chunks) == len(expected_spans)
    for chunk, (document, (start, end)) in zip(chunks, expected_spans):
        assert (chunk.start, chunk.end, chunk.source, chunk.page) == (start, end, document.source, document.page)
        assert chunk.text == document.text[chunk.start:chunk.end]
        # Lines end at \n, \r\n or a lone \r (an old Mac file).
        assert chunk.line == len(re.findall("\r\n|\r|\n", document.text[:chunk.start])) + 1


def uniform_text(n_words, seed=0):
    """Words of one token each, one space apart: every gap is the same WORD boundary."""
    rng = random.Random(seed)
    return " ".join(rng.choice(["apple", "river", "stone", "cloud", "green", "house", "music"]) for _ in range(n_words))


@given(st.integers(1, 300), st.integers(3, 60).flatmap(lambda c: st.tuples(st.just(c), st.integers(0, c - 3))))
def test_without_better_boundaries_it_is_the_tokenizers_own_sliding_window(tokenizer, n_words, sizes):
    # Hugging Face's overflowing windows (max_length, stride) are the reference:
    # with every gap alike, our chunks must be exactly those windows.
    chunk_tokens, overlap = sizes
    text = uniform_text(n_words, seed=n_words)
    reference = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, truncation=True,
                          max_length=chunk_tokens, stride=overlap, return_overflowing_tokens=True)
    windows = [(o[0][0], o[-1][1]) for o in reference["offset_mapping"]]
    assert chunk_text(text, tokenizer, chunk_tokens, overlap) == windows


def test_a_paragraph_break_is_preferred(tokenizer):
    sentence = "The quick brown fox jumps over the lazy dog near the river bank."  # 14 tokens
    first = " ".join([sentence] * 9)   # 126 tokens
    second = " ".join([sentence] * 9)
    text = first + "\n\n" + second
    spans = chunk_text(text, tokenizer, 200, 40)
    assert text[slice(*spans[0])] == first  # not 200 tokens that cut the second paragraph
    start, end = spans[1]
    assert end == len(text) and start < len(first) and text[start - 1] == " "  # the overlap starts on a word
    assert len(offsets_of(tokenizer, text[start:len(first)])) <= 40


def test_a_sentence_end_is_preferred_to_a_word_and_list_numbers_are_no_sentence_ends(tokenizer):
    text = " ".join(f"Item number {i} is here and it is fine" + ("." if i % 3 == 0 else "") for i in range(60))
    spans = chunk_text(text, tokenizer, 50, 0)
    assert len(spans) > 5
    assert all(text[end - 1] == "." for _, end in spans[:-1])
    levels = boundary_levels("See\n2. this. Then", offsets_of(tokenizer, "See\n2. this. Then"),
                             tokenizer("See\n2. this. Then", add_special_tokens=False).word_ids())
    # tokens: see | 2 | . | this | . | then  -> cuts before each of them
    assert levels == [PARAGRAPH, WORD, PUNCTUATION, WORD, PUNCTUATION, SENTENCE, PARAGRAPH]


def test_boundary_levels_rate_word_pieces_lowest_and_blank_lines_highest(tokenizer):
    text = "Unbelievably, yes.\n\nNext"
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    levels = boundary_levels(text, encoding["offset_mapping"], encoding.word_ids())
    assert levels[0] == levels[-1] == PARAGRAPH and levels[-2] == PARAGRAPH  # before "next": the blank line
    long_word = "Pneumonoultramicroscopic"
    encoding = tokenizer(long_word, add_special_tokens=False, return_offsets_mapping=True)
    assert len(encoding.tokens()) > 3
    assert boundary_levels(long_word, encoding["offset_mapping"], encoding.word_ids())[1:-1] == \
        [WORD_PIECE] * (len(encoding.tokens()) - 1)


def test_a_word_longer_than_a_chunk_is_cut_inside_and_still_fits(tokenizer):
    text = "start " + " ".join(["Pneumonoultramicroscopicsilicovolcanoconiosis"] * 5) + " end"
    spans = chunk_text(text, tokenizer, 4, 1)
    for start, end in spans:
        assert n_tokens_with_specials(tokenizer, text[start:end]) <= 4 + 2
    assert text[spans[0][0]:spans[-1][1]] == text


def test_token_windows_on_levels_alone():
    # 10 tokens; a paragraph break before token 6, a sentence end before token 4.
    levels = [PARAGRAPH, WORD, WORD, WORD, SENTENCE, WORD, PARAGRAPH, WORD, WORD, WORD, PARAGRAPH]
    assert token_windows(levels, 8, 0) == [(0, 6), (6, 10)]
    assert token_windows(levels, 8, 3) == [(0, 6), (3, 10)]
    # Best end in 2..5 is the sentence end at 4; from there, in 6..9, the paragraph at 6.
    assert token_windows(levels, 5, 0) == [(0, 4), (4, 6), (6, 10)]
    assert token_windows([PARAGRAPH], 5, 0) == []


def test_the_default_sizes_fit_the_real_encoder_and_nothing_is_truncated(encoder, tokenizer):
    sentence = "Retrieval finds the passages a question needs, and the generator reads them."
    text = (" ".join([sentence] * 80) + "\n\n") * 3
    chunks = chunk_documents([Document(text, "long.txt")], encoder)
    assert len(chunks) > 5
    assert DEFAULT_CHUNK_TOKENS + 2 <= encoder.max_seq_length
    for chunk in chunks:
        assert n_tokens_with_specials(tokenizer, chunk.text) <= DEFAULT_CHUNK_TOKENS + 2
    # The largest size the window allows: 256 - [CLS] - [SEP] = 254, all of it read by the encoder.
    text = uniform_text(1000)
    widest = chunk_text(text, encoder, 254, DEFAULT_OVERLAP)
    assert max(n_tokens_with_specials(tokenizer, text[s:e]) for s, e in widest) == encoder.max_seq_length == 256


def test_chunks_of_a_loaded_file_point_at_its_lines(tmp_path, encoder):
    lines = [f"Line {i}: " + ("the planets circle the sun. " * 3).strip() for i in range(1, 61)]
    path = tmp_path / "notes.md"
    path.write_text("\n".join(lines) + "\n")
    chunks = chunk_documents(load_documents(path).documents, encoder, 50, 10)
    file_lines = path.read_text().split("\n")
    for chunk in chunks:
        first_line_of_chunk = chunk.text.split("\n")[0]
        assert first_line_of_chunk in file_lines[chunk.line - 1]
        assert chunk.location == f"{path}:{chunk.line}"
    assert Chunk("x", "a.pdf", 0, 1, 1, page=3).location == "a.pdf, page 3"


@pytest.mark.parametrize(("chunk_tokens", "overlap", "error", "message"), [
    (255, 40, ValueError, "at most 254"),
    (0, 0, ValueError, "at least 1"),
    (100, 100, ValueError, "smaller than chunk_tokens"),
    (100, -1, ValueError, "0 or more"),
    (100.0, 10, TypeError, "chunk_tokens must be an integer"),
    (True, 0, TypeError, "chunk_tokens must be an integer"),
    (100, "10", TypeError, "overlap must be an integer"),
])
def test_bad_sizes_are_refused_early(encoder, chunk_tokens, overlap, error, message):
    with pytest.raises(error, match=message):
        chunk_text("some text", encoder, chunk_tokens, overlap)
    with pytest.raises(error, match=message):
        chunk_documents([Document("some text", "a.txt")], encoder, chunk_tokens, overlap)


def test_the_limit_comes_from_the_window(encoder, tokenizer):
    assert check_chunk_sizes(254, 0, 254) == (254, 0)
    assert chunk_text("some text", encoder, 254, 0) == [(0, 9)]
    assert chunk_text("some text", tokenizer, 254, 0) == [(0, 9)]  # the tokenizer knows its 256 too
    assert check_chunk_sizes(10_000, 5) == (10_000, 5)  # no window known: no upper limit


def test_bad_inputs_are_refused(encoder, tokenizer):
    with pytest.raises(TypeError, match="fast Hugging Face tokenizer"):
        chunk_text("text", object())
    with pytest.raises(TypeError, match="text must be a string"):
        chunk_text(b"bytes", tokenizer)
    with pytest.raises(TypeError, match=r"documents\[1\] is a str"):
        chunk_documents([Document("a", "a.txt"), "b"], tokenizer)
    with pytest.raises(ValueError, match=r"a\.pdf, page 2: no tokens"):
        chunk_documents([Document("fine", "a.pdf", 1), Document("\u200b\x1b", "a.pdf", 2)], tokenizer)
    assert chunk_text("", tokenizer) == [] and chunk_text(" \n\u200b ", tokenizer) == []


def test_every_character_the_loader_keeps_gives_a_token(tokenizer):
    # The contract between documents.is_blank and chunk_documents: a document
    # that is not blank has tokens, so it cannot vanish from the index. Checked
    # on every assigned Unicode character (one tokenizer call, spaces between).
    import unicodedata

    from rag_helpers.engine.documents import is_blank

    kept = [chr(c) for c in range(0x110000)
            if unicodedata.category(chr(c)) not in ("Cn", "Cs", "Co") and not is_blank(chr(c))]
    text = " ".join(kept)
    tokenized = bytearray(len(text))
    for start, end in offsets_of(tokenizer, text):
        tokenized[start:end] = b"\x01" * (end - start)
    dropped = {ch for i, ch in enumerate(kept) if not tokenized[2 * i]}
    # U+1734 is a combining mark (Mn) in the older Unicode tables of the tokenizer, a spacing one (Mc) in Python's.
    assert len(kept) > 100_000 and dropped <= {"\u1734"}


@given(TEXTS, st.integers(2, 60))
def test_tokenizing_in_pieces_is_tokenizing_at_once(tokenizer, text, segment_chars):
    whole = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    offsets, word_ids = tokenize_with_offsets(text, tokenizer, segment_chars)
    assert offsets == whole["offset_mapping"]
    same_word = [a == b for a, b in zip(word_ids, word_ids[1:])]
    assert same_word == [a == b for a, b in zip(whole.word_ids(), whole.word_ids()[1:])]


# ---------------------------------------------------------------- the engine gives notebook 08's chunks
# rag_helpers/documents.py is notebook 08's `#| export` cells: boundary_levels, token_windows,
# chunk_text, chunk_documents as taught. The engine adds argument checks, long texts tokenized in
# pieces, and a veto (`fits`) that shortens a window that starts or ends inside a word and counts
# more tokens read alone. On plain text (whole words, spaces, sentence ends, line breaks, blank
# lines) nothing is vetoed, so the chunks must be the notebook's, exactly.

from rag_helpers import documents as taught  # noqa: E402

PLAIN_WORDS = ["The", "cat", "sat", "on", "the", "mat", "Jupiter", "is", "the", "largest", "planet", "river",
               "stone", "cloud", "2.", "1.3.", "e.g.", "(see", "below)", "and"]
PLAIN_GAPS = [" ", " ", " ", " ", ". ", ", ", "\n", "\n\n", "! ", "? ", "; "]
PLAIN_TEXTS = st.lists(st.tuples(st.sampled_from(PLAIN_WORDS), st.sampled_from(PLAIN_GAPS)), max_size=300).map(
    lambda pairs: "".join(word + gap for word, gap in pairs))
LEVELS = st.lists(st.integers(WORD_PIECE, PARAGRAPH), max_size=400).map(lambda inner: [PARAGRAPH, *inner, PARAGRAPH])


def test_the_engine_uses_the_taught_levels_and_chunk():
    assert boundary_levels is taught.boundary_levels and Chunk is taught.Chunk
    assert (WORD_PIECE, PUNCTUATION, WORD, SENTENCE, PARAGRAPH) == (0, 1, 2, 3, 4)


@given(LEVELS, SIZES)
def test_engine_windows_without_a_veto_are_the_taught_windows(levels, sizes):
    chunk_tokens, overlap = sizes
    expected = taught.token_windows(levels, chunk_tokens, overlap)
    assert token_windows(levels, chunk_tokens, overlap) == expected
    assert token_windows(levels, chunk_tokens, overlap, fits=lambda start, end: True) == expected


@given(PLAIN_TEXTS, SIZES)
def test_engine_chunk_text_is_the_taught_chunk_text_on_plain_text(tokenizer, text, sizes):
    chunk_tokens, overlap = sizes
    assert chunk_text(text, tokenizer, chunk_tokens, overlap) == taught.chunk_text(text, tokenizer, chunk_tokens, overlap)


@given(st.lists(PLAIN_TEXTS.filter(str.strip), min_size=1, max_size=3), SIZES, st.sampled_from([None, 2]))
def test_engine_chunk_documents_is_the_taught_one_on_plain_text(tokenizer, texts, sizes, page):
    chunk_tokens, overlap = sizes
    documents = [Document(t, f"doc{i}.md", page) for i, t in enumerate(texts)]
    assert chunk_documents(documents, tokenizer, chunk_tokens, overlap) == \
        taught.chunk_documents(documents, tokenizer, chunk_tokens, overlap)


def test_a_long_text_tokenized_in_pieces_still_gives_the_taught_chunks(tokenizer):
    # Longer than SEGMENT_CHARS: the engine tokenizes it in pieces, the notebook at once.
    text = "\n\n".join(uniform_text(40 + i % 50, seed=i) + "." for i in range(400))
    assert len(text) > 5 * 10_000
    assert chunk_text(text, tokenizer, 200, 40) == taught.chunk_text(text, tokenizer, 200, 40)


def test_the_taught_and_engine_chunkers_agree_on_the_shipped_corpus(encoder, tokenizer):
    docs = taught.load_python_docs()
    for size, overlap in ((200, 40), (64, 12)):
        assert chunk_documents(docs, encoder, size, overlap) == taught.chunk_documents(docs, tokenizer, size, overlap)
