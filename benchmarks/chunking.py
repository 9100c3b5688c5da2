"""Chunking: ``rag_helpers.engine.chunking`` against the tokenizer it cannot avoid calling.

The text is real: this repository's own Markdown and Python files, joined
and repeated to the size wanted (prose, tables and code, like a user's
notes folder). Three ways through it, same tokenizer (all-MiniLM-L6-v2's):

- *tokenize*: one call with offsets on the whole text: every chunker must
  tokenize, though not necessarily like this (a fast tokenizer slows down
  on one huge string);
- *in pieces*: ``tokenize_with_offsets``, the same tokens from one batched
  call on pieces of about 10,000 characters cut at word separators (what
  ``chunk_text`` does first);
- *sliding windows*: the tokenizer's own fixed windows
  (``return_overflowing_tokens`` with ``stride``): no boundaries looked at;
- ``chunk_text``: tokenize once, rate every gap, cut at the best ones.

And many small files, where the cost per call shows: ``chunk_documents``
on 1,000 files of about 1 kB against one batched tokenizer call on them.

``python -m benchmarks chunking [--quick]`` once the part is registered, or
on its own: ``python -m benchmarks.chunking [--quick]``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import rag_helpers as rh
from rag_helpers.engine.chunking import (
    DEFAULT_CHUNK_TOKENS,
    DEFAULT_OVERLAP,
    chunk_documents,
    chunk_text,
    tokenize_with_offsets,
)
from rag_helpers.engine.documents import Document

from .common import Goal, Section, fmt_ms, fmt_ratio, measure, table

ROOT = Path(__file__).resolve().parent.parent
SIZES = [100_000, 1_000_000]
QUICK_SIZES = [100_000]
SMALL_FILES, SMALL_FILE_CHARS = 1_000, 1_000


def sample_text(n_chars: int) -> str:
    """``n_chars`` of this repository's Markdown and Python, in a fixed order."""
    files = sorted(p for pattern in ("*.md", "rag_helpers/*.py", "benchmarks/*.py", "benchmarks/*.md")
                   for p in ROOT.glob(pattern))
    corpus = "\n\n".join(p.read_text(encoding="utf-8") for p in files)
    return (corpus * (n_chars // len(corpus) + 1))[:n_chars]


def run(quick: bool = False) -> Section:
    encoder = rh.load_encoder(device="cpu")
    tokenizer = encoder.tokenizer
    size, overlap = DEFAULT_CHUNK_TOKENS, DEFAULT_OVERLAP
    rows, results = [], []
    for n_chars in QUICK_SIZES if quick else SIZES:
        text = sample_text(n_chars)
        fns = {
            "tokenize": lambda: tokenizer(text, add_special_tokens=False, return_offsets_mapping=True,
                                          verbose=False),
            "in pieces": lambda: tokenize_with_offsets(text, tokenizer),
            "sliding": lambda: tokenizer(text, add_special_tokens=False, return_offsets_mapping=True,
                                         truncation=True, max_length=size, stride=overlap,
                                         return_overflowing_tokens=True),
            "chunk_text": lambda: chunk_text(text, tokenizer, size, overlap),
        }
        timings = measure(fns, repeats=3 if quick else 5)
        spans = fns["chunk_text"]()
        n_tokens = len(fns["tokenize"]()["input_ids"])
        worst = max(len(ids) for ids in tokenizer([text[s:e] for s, e in spans], verbose=False)["input_ids"])
        ratio = timings["chunk_text"].median / timings["tokenize"].median
        mb_s = n_chars / 1e6 / timings["chunk_text"].median
        rows.append([f"{n_chars / 1e6:g} MB", f"{n_tokens:,}", f"{len(spans):,}", fmt_ms(timings["tokenize"].median),
                     fmt_ms(timings["in pieces"].median), fmt_ms(timings["sliding"].median),
                     fmt_ms(timings["chunk_text"].median), fmt_ratio(ratio), f"{mb_s:.2f}", worst])
        results.append({"chars": n_chars, "tokens": n_tokens, "chunks": len(spans), "ratio": ratio,
                        "mb_per_s": mb_s, "longest_with_specials": worst,
                        "seconds": {m: t.median for m, t in timings.items()}})
        print(f"  chunking {n_chars:,} chars: tokenize {timings['tokenize'].ms:.0f} ms, "
              f"chunk_text {timings['chunk_text'].ms:.0f} ms", flush=True)

    # Many small files: one tokenizer call per document.
    pieces = sample_text(SMALL_FILES * SMALL_FILE_CHARS)
    documents = [Document(pieces[i:i + SMALL_FILE_CHARS], f"f{i}.txt")
                 for i in range(0, len(pieces), SMALL_FILE_CHARS)]
    documents = [d for d in documents if d.text.strip()]
    texts = [d.text for d in documents]
    fns = {
        "batch": lambda: tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True, verbose=False),
        "chunk_documents": lambda: chunk_documents(documents, tokenizer, size, overlap),
    }
    small = measure(fns, repeats=3 if quick else 5)
    small_ratio = small["chunk_documents"].median / small["batch"].median

    section = Section("Chunking: `chunk_text` against the tokenizer alone")
    section.tables.append(table(
        ["text", "tokens", "chunks", "tokenize ms", "in pieces ms", "sliding windows ms", "`chunk_text` ms",
         "÷ tokenize",
         "MB/s", "longest chunk (tokens with [CLS], [SEP])"], rows))
    section.tables.append(table(
        ["documents", "one batched tokenizer call ms", "`chunk_documents` ms", "÷ batch"],
        [[f"{len(documents):,} of {SMALL_FILE_CHARS:,} chars", fmt_ms(small["batch"].median),
          fmt_ms(small["chunk_documents"].median), fmt_ratio(small_ratio)]]))
    section.notes.append(f"chunk_tokens={size}, overlap={overlap}; all-MiniLM-L6-v2's fast tokenizer; the text "
                         "is this repository's Markdown and Python, repeated.")
    section.notes.append("\"sliding windows\": the tokenizer's own `return_overflowing_tokens` windows, which "
                         "ignore paragraphs and sentences; \"÷ tokenize\": `chunk_text` against one plain "
                         "tokenizer call on the whole text (below 1: tokenizing in pieces wins more than rating "
                         "the gaps and choosing the cuts costs).")
    section.raw = {"results": results, "small_files": {"documents": len(documents), "ratio": small_ratio,
                                                       "seconds": {m: t.median for m, t in small.items()}}}
    top = results[-1]
    section.goals += [
        Goal("every chunk fits the encoder's window (256 with [CLS] and [SEP])",
             f"longest {max(r['longest_with_specials'] for r in results)}",
             all(r["longest_with_specials"] <= DEFAULT_CHUNK_TOKENS + 2 for r in results)),
        Goal(f"chunking costs at most twice a plain tokenizer call at {top['chars'] / 1e6:g} MB",
             f"{fmt_ratio(top['ratio'])}", top["ratio"] <= 2),
    ]
    return section


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv[1:]).markdown())
