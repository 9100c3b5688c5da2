"""4. Embedding: ``rag_helpers.embed`` against ``SentenceTransformer.encode``, and the cache.

The knowledge base is real English text that every installation has: the
prose paragraphs of NumPy's and the standard library's docstrings (about 150
characters each), so the numbers do not depend on a download. The shipped
corpus (Python's FAQ and HOWTO pages) cut by the course's chunker into pieces
of 100-200 tokens measures the fast path (ONNX Runtime, the ``fast`` extra)
against ``encode`` in chunks per second, with the cosine between their
vectors and the top-10 of the corpus's labelled questions.
"""
from __future__ import annotations

import importlib
import inspect
import os
import re
import tempfile
import time

import numpy as np
import torch

import rag_helpers as rh
from rag_helpers.engine.embedding_cache import embed_cached
from rag_helpers._infra import onnx_encoder

from .common import Goal, Section, fmt_ms, fmt_ratio, measure, same_ranking, table, timed_once

N_TEXTS = 512
QUICK_N_TEXTS = 64
N_CHUNKS = 128
QUICK_N_CHUNKS = 64  # the fast path starts at 64 texts
CHUNK_TOKENS = 200
MIN_CHUNK_TOKENS = 100  # documents' short last pieces left out: the goal is about full chunks
FAST_PATH_GOAL = 1.5
# Used only where the corpus or the chunker cannot be imported.
QUERIES = [
    "How do I read a file line by line?",
    "Generate random numbers from a normal distribution.",
    "Join path components into one path.",
    "What happens when a subprocess times out?",
    "Compute the inverse of a matrix.",
    "Parse a JSON document into Python objects.",
    "Sort a list and keep equal elements in their original order.",
    "Format a date as a string.",
    "Split a string with a regular expression.",
    "Copy a directory tree recursively.",
    "Fourier transform of a real signal.",
    "Masked arrays with missing values.",
]
_MODULES = ["numpy", "numpy.linalg", "numpy.fft", "numpy.random", "numpy.ma", "numpy.polynomial",
            "os", "os.path", "re", "json", "collections", "itertools", "functools", "pathlib",
            "string", "statistics", "math", "datetime", "textwrap", "shutil", "subprocess", "random"]


def docstring_corpus(limit: int) -> list[str]:
    """Up to ``limit`` distinct prose paragraphs (60-500 characters) from installed docstrings."""
    texts: list[str] = []
    seen: set[str] = set()
    for module_name in _MODULES:
        module = importlib.import_module(module_name)
        for name in sorted(dir(module)):
            if name.startswith("_"):
                continue
            doc = inspect.getdoc(getattr(module, name, None)) or ""
            for paragraph in re.split(r"\n\s*\n", doc):
                text = " ".join(paragraph.split())
                if not 60 <= len(text) <= 500 or not text[0].isupper() or text in seen:
                    continue
                if any(mark in paragraph for mark in (">>>", "----", "::")):  # code, headings
                    continue
                seen.add(text)
                texts.append(text)
                if len(texts) == limit:
                    return texts
    return texts


def chunk_corpus(limit: int, encoder) -> tuple[list[str], list[str], str]:
    """Up to ``limit`` chunks of 100-200 tokens, queries for them, and where they come from.

    The shipped corpus cut with ``chunk_documents`` (200 tokens), every k-th
    full chunk so that all pages are sampled; its labelled questions are the
    queries. Where those modules are missing, consecutive docstring
    paragraphs joined to 100-250 tokens, and ``QUERIES``.
    """
    try:
        from rag_helpers.engine.chunking import chunk_documents
        from rag_helpers.engine.corpus import load_labelled_questions, load_python_docs
    except ImportError:
        return _docstring_chunks(limit, encoder.tokenizer), QUERIES, "docstring paragraphs joined"
    chunks = [c.text for c in chunk_documents(load_python_docs(), encoder, chunk_tokens=CHUNK_TOKENS)]
    lengths = [len(ids) for ids in encoder.tokenizer(chunks)["input_ids"]]
    full = [text for text, n in zip(chunks, lengths) if n >= MIN_CHUNK_TOKENS]
    step = max(1, len(full) // limit)
    queries = [q.question for q in load_labelled_questions("all")]
    origin = f"the shipped corpus (Python's FAQ and HOWTO) cut into {CHUNK_TOKENS}-token chunks"
    return full[::step][:limit], queries, origin


def _docstring_chunks(limit: int, tokenizer, *, seed: int = 0) -> list[str]:
    """Up to ``limit`` chunks of 100-250 tokens (target drawn per chunk, seeded): docstring paragraphs joined."""
    rng = np.random.default_rng(seed)
    chunks: list[str] = []
    current: list[str] = []
    target = int(rng.integers(100, 250))
    for paragraph in docstring_corpus(100_000):
        current.append(paragraph)
        # Truncated one past the window: long enough to tell, and no "too long" warning.
        n_tokens = len(tokenizer(" ".join(current), truncation=True, max_length=257)["input_ids"])
        if n_tokens >= target:
            if n_tokens <= 256:  # within the encoder's window: nothing truncated
                chunks.append(" ".join(current))
            current = []
            target = int(rng.integers(100, 250))
            if len(chunks) == limit:
                break
    return chunks


class _FastPathOff:
    """``with _FastPathOff():`` embed takes the plain path (``RAG_FAST_EMBEDDING=0``)."""

    def __enter__(self):
        self.saved = os.environ.get(onnx_encoder.FAST_EMBEDDING_ENV)
        os.environ[onnx_encoder.FAST_EMBEDDING_ENV] = "0"

    def __exit__(self, *exc):
        if self.saved is None:
            del os.environ[onnx_encoder.FAST_EMBEDDING_ENV]
        else:
            os.environ[onnx_encoder.FAST_EMBEDDING_ENV] = self.saved


def run_chunks(encoder, fast, prepare_seconds: float, quick: bool) -> tuple[list[str], list[str], list[Goal], dict]:
    """The fast path against ``encode`` on realistic chunks: table rows, notes, goals, raw numbers."""
    chunks, query_texts, origin = chunk_corpus(QUICK_N_CHUNKS if quick else N_CHUNKS, encoder)
    n = len(chunks)
    lengths = [len(ids) for ids in encoder.tokenizer(chunks)["input_ids"]]
    fns = {
        "encode": lambda: encoder.encode(chunks, show_progress_bar=False),
        "embed": lambda: rh.embed(chunks, encoder, show_progress_bar=False),
    }
    timings = measure(fns, repeats=3 if quick else 5, max_seconds=1e9, keep_slow_warmup=False)
    s = {m: t.median for m, t in timings.items()}
    speedup = s["encode"] / s["embed"]

    reference = encoder.encode(chunks, normalize_embeddings=True)
    ours = rh.embed(chunks, encoder)
    worst_cosine = float(np.min(np.sum(ours * reference, axis=1)))
    with _FastPathOff():
        queries = rh.embed(query_texts, encoder)
    k = 10
    top_ours = np.argsort(-(queries @ ours.T), axis=1, kind="stable")[:, :k]
    top_reference = np.argsort(-(queries @ reference.T), axis=1, kind="stable")[:, :k]
    ranking, same = same_ranking(top_ours, top_reference, queries, reference)

    if fast is not None:
        import onnxruntime

        how = (f"ONNX Runtime {onnxruntime.__version__}, {fast.workers} runs at a time of one thread each, "
               f"at most {onnx_encoder.TOKEN_BUDGET} tokens per run")
    else:
        how = "fast path not in use (the `fast` extra is not installed, or it is turned off): plain `encode`"
    rows = [
        [f"`SentenceTransformer.encode(chunks)`, its defaults (batch 32, {torch.get_num_threads()} torch threads)",
         fmt_ms(s["encode"]), f"{n / s['encode']:.1f}", "1.00x"],
        [f"`rag_helpers.embed(chunks, encoder)`: {how}", fmt_ms(s["embed"]), f"{n / s['embed']:.1f}",
         fmt_ratio(speedup)],
    ]
    print(f"  embedding {n} chunks: encode {n / s['encode']:.1f} chunks/s, embed {n / s['embed']:.1f} chunks/s "
          f"({speedup:.2f}x), lowest cosine {worst_cosine:.7f}, top-{k}: {ranking}", flush=True)
    notes = [
        f"{n} chunks of {min(lengths)}-{max(lengths)} tokens (median {int(np.median(lengths))}), from {origin}; "
        f"medians of {len(timings['encode'].samples)} after a warm-up, the two taking "
        "turns." + (f" The fast path was prepared in {prepare_seconds:.1f} s before timing (export checked or made, "
                    "session opened, vectors verified; the export itself happens once per machine)."
                    if fast is not None else ""),
        f"Same results: lowest cosine between `embed`'s and `encode`'s vectors {worst_cosine:.7f}; top-{k} of "
        f"{len(query_texts)} queries: {ranking}.",
    ]
    goal = Goal(
        f"`embed` at least {FAST_PATH_GOAL}x `encode`'s chunks/s on 100-200-token chunks, cosine >= 0.999, "
        f"same top-{k}",
        f"{fmt_ratio(speedup)}, cosine >= {worst_cosine:.5f}, top-{k} {ranking}"
        + ("" if fast is not None else " (fast path not installed)"),
        (speedup >= FAST_PATH_GOAL and worst_cosine >= 0.999 and same) if fast is not None else None,
    )
    raw = {"seconds": s, "n": n, "speedup": speedup, "worst_cosine": worst_cosine, "prepare": prepare_seconds}
    return rows, notes, [goal], raw


def run(quick: bool = False) -> Section:
    encoder = rh.load_encoder(device="cpu")
    texts = docstring_corpus(QUICK_N_TEXTS if quick else N_TEXTS)
    n = len(texts)
    embed_batch = inspect.signature(rh.embed).parameters["batch_size"].default
    encode_batch = inspect.signature(encoder.encode).parameters["batch_size"].default

    def embed_plain():
        with _FastPathOff():
            return rh.embed(texts, encoder, show_progress_bar=False)

    fns = {
        "encode": lambda: encoder.encode(texts, show_progress_bar=False),
        # The wrapper's cost is measured on the plain path; the fast path has a row of its own.
        "embed": embed_plain,
        # encode with embed's batch size: the same work, so embed ÷ this is the wrapper's own cost.
        "encode_same_batch": lambda: encoder.encode(texts, batch_size=embed_batch, show_progress_bar=False),
    }
    start = time.perf_counter()
    fast = onnx_encoder.fast_encoder_for(encoder)  # exports on first use, then loads and verifies
    prepare_seconds = time.perf_counter() - start
    if fast is not None and n >= 64:
        fns["embed_fast"] = lambda: rh.embed(texts, encoder, show_progress_bar=False)
    timings = measure(fns, repeats=3, max_seconds=1e9, keep_slow_warmup=False)
    embedded = fns["embed"]()
    encoded = fns["encode"]()
    diff = float(np.abs(embedded - encoded / np.linalg.norm(encoded, axis=1, keepdims=True)).max())

    with tempfile.TemporaryDirectory(prefix="rag-bench-embeddings-") as cache_dir, _FastPathOff():
        miss_seconds = timed_once(lambda: embed_cached(texts, encoder, cache_dir))  # embeds, writes
        hit = measure({"hit": lambda: embed_cached(texts, encoder, cache_dir)}, repeats=7)["hit"]
        same = np.array_equal(embed_cached(texts, encoder, cache_dir), embedded)

    s = {m: t.median for m, t in timings.items()}
    overhead = s["embed"] / s["encode"]
    wrapper = s["embed"] / s["encode_same_batch"]
    cache_speedup = s["embed"] / hit.median
    rows = [
        [f"`SentenceTransformer.encode(texts)`, its defaults (batch {encode_batch})", fmt_ms(s["encode"]),
         f"{n / s['encode']:,.0f}", "1.00x"],
        [f"`rag_helpers.embed(texts, encoder)`, its defaults (batch {embed_batch})", fmt_ms(s["embed"]),
         f"{n / s['embed']:,.0f}", fmt_ratio(overhead)],
        [f"`SentenceTransformer.encode`, batch {embed_batch} (embed's work without the wrapper)",
         fmt_ms(s["encode_same_batch"]), f"{n / s['encode_same_batch']:,.0f}",
         fmt_ratio(s["encode_same_batch"] / s["encode"])],
        ["`rag_helpers.embed_cached`, a hit (file on disk)", fmt_ms(hit.median), f"{n / hit.median:,.0f}",
         fmt_ratio(hit.median / s["encode"])],
    ]
    if "embed_fast" in s:
        rows.insert(2, ["`rag_helpers.embed`, the fast path (ONNX Runtime, the `fast` extra)", fmt_ms(s["embed_fast"]),
                        f"{n / s['embed_fast']:,.0f}", fmt_ratio(s["embed_fast"] / s["encode"])])
    print(f"  embedding {n} texts: encode {s['encode']:.2f} s, embed {s['embed']:.2f} s, "
          f"cache hit {hit.ms:.1f} ms", flush=True)

    chunk_rows, chunk_notes, chunk_goals, chunk_raw = run_chunks(encoder, fast, prepare_seconds, quick)

    section = Section("4. Embedding: documents per second, and the cache")
    section.tables.append(table(["how", "ms for all texts", "documents / s", "time ÷ encode"], rows))
    section.tables.append(table(["how (chunks of 100-200 tokens)", "ms for all chunks", "chunks / s",
                                 "speed-up over encode"], chunk_rows))
    section.notes += [
        f"{n} texts from installed docstrings (mean {np.mean([len(t) for t in texts]):.0f} characters), "
        "all-MiniLM-L6-v2 (packaged copy) on the CPU; medians of 3 after a warm-up, methods taking turns.",
        f"`embed` (fast path off) = `encode` + input checks + the long-text warning + `l2_normalize`: its own cost is "
        f"{fmt_ratio(wrapper)} of `encode` at the same batch size; the rest of any gap is the batch size "
        f"(on a CPU, smaller batches pad less). Largest difference from `encode`'s vectors: {diff:.1e}.",
        f"The cache's first call (a miss: embed, then write the file) took {fmt_ms(miss_seconds)} ms; "
        f"a hit re-reads the file, checks its key (model fingerprint, texts hash), shape and unit rows: "
        f"{'identical arrays' if same else 'ARRAYS DIFFER'}.",
        *chunk_notes,
    ]
    section.goals += [
        Goal("`embed` no slower than 1.05x `SentenceTransformer.encode` on the same texts (each with its defaults)",
             f"{fmt_ratio(overhead)} (the wrapper alone, same batch size: {fmt_ratio(wrapper)})", overhead <= 1.05),
        Goal("a re-run with cached embeddings 20x faster than re-encoding",
             f"{fmt_ratio(cache_speedup)} ({fmt_ms(hit.median)} ms against {fmt_ms(s['embed'])} ms)",
             cache_speedup >= 20 and same),
        *chunk_goals,
    ]
    section.raw = {"seconds": s, "hit": hit.median, "miss": miss_seconds, "n": n, "chunks": chunk_raw}
    return section
