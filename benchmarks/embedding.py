"""4. Embedding: ``rag_helpers.embed`` against ``SentenceTransformer.encode``, and the cache.

The knowledge base is real English text that every installation has: the
prose paragraphs of NumPy's and the standard library's docstrings (about 150
characters each), so the numbers do not depend on a download.
"""
from __future__ import annotations

import importlib
import inspect
import re
import tempfile

import numpy as np

import rag_helpers as rh

from .common import Goal, Section, fmt_ms, fmt_ratio, measure, table, timed_once

N_TEXTS = 512
QUICK_N_TEXTS = 64
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


def run(quick: bool = False) -> Section:
    encoder = rh.load_encoder(device="cpu")
    texts = docstring_corpus(QUICK_N_TEXTS if quick else N_TEXTS)
    n = len(texts)
    embed_batch = inspect.signature(rh.embed).parameters["batch_size"].default
    encode_batch = inspect.signature(encoder.encode).parameters["batch_size"].default

    fns = {
        "encode": lambda: encoder.encode(texts, show_progress_bar=False),
        "embed": lambda: rh.embed(texts, encoder, show_progress_bar=False),
        # encode with embed's batch size: the same work, so embed ÷ this is the wrapper's own cost.
        "encode_same_batch": lambda: encoder.encode(texts, batch_size=embed_batch, show_progress_bar=False),
    }
    timings = measure(fns, repeats=3, max_seconds=1e9, keep_slow_warmup=False)
    embedded = fns["embed"]()
    encoded = fns["encode"]()
    diff = float(np.abs(embedded - encoded / np.linalg.norm(encoded, axis=1, keepdims=True)).max())

    with tempfile.TemporaryDirectory(prefix="rag-bench-embeddings-") as cache_dir:
        miss_seconds = timed_once(lambda: rh.embed_cached(texts, encoder, cache_dir))  # embeds, writes
        hit = measure({"hit": lambda: rh.embed_cached(texts, encoder, cache_dir)}, repeats=7)["hit"]
        same = np.array_equal(rh.embed_cached(texts, encoder, cache_dir), embedded)

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
    print(f"  embedding {n} texts: encode {s['encode']:.2f} s, embed {s['embed']:.2f} s, "
          f"cache hit {hit.ms:.1f} ms", flush=True)

    section = Section("4. Embedding: documents per second, and the cache")
    section.tables.append(table(["how", "ms for all texts", "documents / s", "time ÷ encode"], rows))
    section.notes += [
        f"{n} texts from installed docstrings (mean {np.mean([len(t) for t in texts]):.0f} characters), "
        "all-MiniLM-L6-v2 (packaged copy) on the CPU; medians of 3 after a warm-up, methods taking turns.",
        f"`embed` = `encode` + input checks + the long-text warning + `l2_normalize`: its own cost is "
        f"{fmt_ratio(wrapper)} of `encode` at the same batch size; the rest of any gap is the batch size "
        f"(on a CPU, smaller batches pad less). Largest difference from `encode`'s vectors: {diff:.1e}.",
        f"The cache's first call (a miss: embed, then write the file) took {fmt_ms(miss_seconds)} ms; "
        f"a hit re-reads the file, checks its key (model fingerprint, texts hash), shape and unit rows: "
        f"{'identical arrays' if same else 'ARRAYS DIFFER'}.",
    ]
    section.goals += [
        Goal("`embed` no slower than 1.05x `SentenceTransformer.encode` on the same texts (each with its defaults)",
             f"{fmt_ratio(overhead)} (the wrapper alone, same batch size: {fmt_ratio(wrapper)})", overhead <= 1.05),
        Goal("a re-run with cached embeddings 20x faster than re-encoding",
             f"{fmt_ratio(cache_speedup)} ({fmt_ms(hit.median)} ms against {fmt_ms(s['embed'])} ms)",
             cache_speedup >= 20 and same),
    ]
    section.raw = {"seconds": s, "hit": hit.median, "miss": miss_seconds, "n": n}
    return section
