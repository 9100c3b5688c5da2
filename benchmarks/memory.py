"""6. Memory: what ``search`` allocates on top of the documents, and the whole pipeline's footprint.

Two measures for ``search``:
* tracemalloc's peak: NumPy reports every array it allocates to tracemalloc,
  so this is exactly the most array memory alive at once during the call;
* RSS peak: the process's resident memory sampled every millisecond in a
  thread, minus what it was before the call, after handing freed memory back
  to the system (glibc ``malloc_trim``); it also sees C++ and torch
  allocations, which tracemalloc does not: used for the peers.
Both relative to the size of the document matrix, which exists before the call.
"""
from __future__ import annotations

import ctypes
import gc
import json
import subprocess
import sys
import threading
import time
import tracemalloc

import numpy as np

import rag_helpers as rh

from .common import SEED, Goal, Section, fmt_n, random_unit_vectors, table

N = 10**6
QUICK_N = 10**5
BATCH = 64


def _release_free_memory() -> None:
    # Freed arrays stay in the allocator's heap (resident) and get reused
    # silently; trimming first makes every byte the call needs show up as new.
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the RSS column may read low
        pass


def rss_peak_during(fn) -> int:
    """Bytes of resident memory above the level before ``fn()``, at its highest during the call."""
    import psutil

    _release_free_memory()
    process = psutil.Process()
    base = process.memory_info().rss
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.001)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        fn()
    finally:
        done.set()
        thread.join()
    return max(peak[0], process.memory_info().rss) - base


def traced_peak_during(fn) -> int:
    """Peak bytes traced by tracemalloc during ``fn()``, above what was allocated before it."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


_PIPELINE_SCRIPT = r"""
import json, resource, psutil
proc = psutil.Process()
rss = {"start": proc.memory_info().rss}
import rag_helpers as rh
rss["imports"] = proc.memory_info().rss
pipe = rh.RAGPipeline(rh.SAMPLE_DOCUMENTS, k=2, generator_model=rh.PACKAGED_GENERATOR, device="cpu")
rss["encoder + document embeddings"] = proc.memory_info().rss
generator = pipe.generator
rss["generator loaded"] = proc.memory_info().rss
result = pipe.answer(rh.SAMPLE_QUESTION)
rss["after the answer"] = proc.memory_info().rss
weights = {
    "encoder": sum(p.numel() * p.element_size() for p in pipe.encoder.parameters()),
    "generator": sum(p.numel() * p.element_size() for p in generator.model.parameters()),
}
# The peak of this process's own memory: VmHWM on Linux. (ru_maxrss would
# also count the parent's memory at the fork, before this program started.)
try:
    with open("/proc/self/status") as f:
        peak = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM"))
except OSError:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"rss": rss, "peak": peak,
                  "weights": weights, "docs_bytes": pipe.doc_embeddings.nbytes, "answer": result.answer}))
"""


def _pipeline_footprint() -> dict:
    from rag_helpers._infra.gguf_cache import ensure_converted
    from rag_helpers._infra.models import packaged_generator_gguf

    ensure_converted(packaged_generator_gguf())  # a converted cache, so the child only loads it
    out = subprocess.run([sys.executable, "-c", _PIPELINE_SCRIPT], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(quick: bool = False) -> Section:
    import faiss
    import torch
    from sentence_transformers import util

    n = QUICK_N if quick else N
    docs = random_unit_vectors(n)
    queries = random_unit_vectors(BATCH, seed=SEED + 1)
    matrix = docs.nbytes
    cases = {
        "`rag_helpers.search`, k = 5": lambda: rh.search(queries, docs, 5),
        "`rag_helpers.search`, k = 100": lambda: rh.search(queries, docs, 100),
        "floor `Q @ docs.T` (all scores at once)": lambda: queries @ docs.T,
    }
    rows, results = [], {}
    for name, fn in cases.items():
        fn()  # warm-up: first-call allocations are not the search's
        traced = traced_peak_during(fn)
        rss = rss_peak_during(fn)
        results[name] = {"traced": traced, "rss": rss}
        rows.append([name, f"{traced / 2**20:,.1f}", f"{traced / matrix:.3f}x", f"{rss / 2**20:,.1f}", f"{rss / matrix:.3f}x"])

    index = faiss.IndexFlatIP(docs.shape[1])
    rss = rss_peak_during(lambda: index.add(docs))
    results["faiss IndexFlatIP.add (its own copy of the matrix)"] = {"rss": rss}
    rows.append(["faiss `IndexFlatIP.add` (keeps its own copy of the matrix)", "not traced (C++)", "",
                 f"{rss / 2**20:,.1f}", f"{rss / matrix:.3f}x"])
    docs_t = torch.from_numpy(docs)
    peers = {
        "faiss IndexFlatIP (default), k = 5": lambda: index.search(queries, 5),
        "sentence-transformers semantic_search, k = 5": lambda: util.semantic_search(
            torch.from_numpy(queries), docs_t, top_k=5, score_function=util.dot_score),
    }
    for name, fn in peers.items():
        fn()
        rss = rss_peak_during(fn)
        results[name] = {"rss": rss}
        rows.append([name, "not traced (C++, torch)", "", f"{rss / 2**20:,.1f}", f"{rss / matrix:.3f}x"])
    del index, docs_t
    print(f"  memory N={fmt_n(n)}: " + ", ".join(f"{k}: {v.get('traced', v['rss']) / 2**20:.1f} MiB"
                                                 for k, v in results.items()), flush=True)

    pipeline = _pipeline_footprint()
    mib = {stage: f"{value / 2**20:,.0f}" for stage, value in pipeline["rss"].items()}
    pipeline_rows = [[stage, value] for stage, value in mib.items()]
    pipeline_rows.append(["**peak (VmHWM)**", f"**{pipeline['peak'] / 2**20:,.0f}**"])
    print(f"  memory pipeline: peak {pipeline['peak'] / 2**20:.0f} MiB", flush=True)

    section = Section(f"6. Memory: `search` for a batch of {BATCH} over N = {fmt_n(n)}, and the whole pipeline")
    section.tables.append(
        f"Document matrix: {n:,} × 384 float32 = {matrix / 2**20:,.0f} MiB, allocated before each call.\n\n"
        + table(["call", "tracemalloc peak MiB", "÷ matrix", "RSS peak above start MiB", "÷ matrix"], rows))
    section.tables.append(
        "**The whole pipeline on the planet example** (a fresh process: `RAGPipeline(SAMPLE_DOCUMENTS, k=2)`, "
        "packaged generator, one answer), resident memory in MiB after each stage:\n\n"
        + table(["stage", "RSS MiB"], pipeline_rows))
    section.notes += [
        f"`search` holds one block of scores at a time ({rh.engine.retrieval.SCORE_BLOCK_BYTES / 2**20:.0f} MiB at most, "
        "`SCORE_BLOCK_BYTES`), whatever N and the number of queries.",
        f"Pipeline weights: encoder {pipeline['weights']['encoder'] / 2**20:,.0f} MiB, generator "
        f"{pipeline['weights']['generator'] / 2**20:,.0f} MiB (float32); the 10 document embeddings are "
        f"{pipeline['docs_bytes']:,} bytes. Most of the rest is PyTorch and the libraries themselves.",
    ]
    worst = max(results[name]["traced"] for name in results if "rag_helpers.search" in name)
    worst_rss = max(results[name]["rss"] for name in results if "rag_helpers.search" in name)
    section.goals += [
        Goal(f"peak memory of `search`, batch of {BATCH} over N = {fmt_n(n)}: under 1.5x the document matrix"
             + (" (--quick: 1e6 not run)" if quick else ""),
             f"{worst / matrix:.3f}x traced, {worst_rss / matrix:.3f}x RSS ({worst / 2**20:.1f} MiB over "
             f"a {matrix / 2**20:,.0f} MiB matrix)", worst < 1.5 * matrix and worst_rss < 1.5 * matrix),
        Goal("whole pipeline on the planet example: peak memory reported",
             f"{pipeline['peak'] / 2**20:,.0f} MiB peak RSS", True),
    ]
    section.raw = {"search": results, "pipeline": pipeline, "matrix_bytes": matrix}
    return section
