"""BM25: ``rag_helpers.engine.bm25.BM25Index`` against the bm25s library, same tokens, same run.

The collection is the shipped Python FAQ/HOWTO pages cut at blank lines
(about 4,800 paragraphs), and the same repeated 10 times for a larger index;
the queries are the 174 labelled FAQ questions. Both libraries get the same
tokens (``rag_helpers.engine.bm25.tokenize``) and the same parameters (k1 = 1.5,
b = 0.75, Lucene's idf), and both timings include tokenizing. bm25s is timed
with its default backend (NumPy) and, when numba is installed, its numba
backend (compiled before timing).
"""
from __future__ import annotations

import numpy as np

from rag_helpers.engine.bm25 import BM25Index, tokenize

from .common import Goal, Section, fmt_ms, fmt_n, fmt_ratio, measure, table

K = 10
REPEATS = (1, 10)  # the collection once, and repeated 10 times
QUICK_REPEATS = (1,)
ONE_AT_A_TIME = 20  # queries timed one call each, for the latency of a single question


def _collection() -> tuple[list[str], list[str]]:
    from rag_helpers.engine.corpus import load_labelled_questions, load_python_docs

    paragraphs = [p for doc in load_python_docs() for p in doc.text.split("\n\n") if p.strip()]
    return paragraphs, [q.question for q in load_labelled_questions()]


def _bm25s_index(texts: list[str], backend: str):
    import bm25s

    retriever = bm25s.BM25(k1=1.5, b=0.75, method="lucene", backend=backend)
    retriever.index([tokenize(t) for t in texts], show_progress=False)
    return retriever


def _bm25s_search(retriever, queries: list[str], k: int) -> np.ndarray:
    return retriever.retrieve([tokenize(q) for q in queries], k=k, show_progress=False).documents


def _peers() -> list[str]:
    """bm25s's backends to time: NumPy always, numba when it is installed."""
    import importlib.util

    return ["numpy", "numba"] if importlib.util.find_spec("numba") else ["numpy"]


def _same_top_k(ours: np.ndarray, theirs: np.ndarray, scores: np.ndarray) -> str:
    """"identical", or how many rows differ only in the order of exactly tied scores (bm25s leaves ties unordered)."""
    if np.array_equal(ours, theirs):
        return "identical"
    rows = np.flatnonzero((ours != theirs).any(axis=1))
    for r in rows:
        # Same documents with the same score at every rank: only tied ones swapped.
        if not np.array_equal(scores[r, ours[r]], scores[r, theirs[r]]):
            return f"MISMATCH in query {r}"
    return f"same up to tie order ({rows.size} queries)"


def run(quick: bool = False) -> Section:
    import bm25s

    paragraphs, questions = _collection()
    peers = _peers()
    build_rows, query_rows, results = [], [], []
    for repeat in QUICK_REPEATS if quick else REPEATS:
        texts = paragraphs * repeat
        n = len(texts)

        build = measure({"ours": lambda: BM25Index().fit(texts),
                         **{f"bm25s {p}": (lambda p=p: _bm25s_index(texts, p)) for p in peers}},
                        repeats=3 if quick else 5, keep_slow_warmup=False)
        ours_build = build["ours"].median
        build_rows.append([fmt_n(n), fmt_ms(ours_build),
                           *(f"{fmt_ms(build[f'bm25s {p}'].median)} "
                             f"({fmt_ratio(build[f'bm25s {p}'].median / ours_build)})" for p in peers)])

        index = BM25Index().fit(texts)
        retrievers = {p: _bm25s_index(texts, p) for p in peers}
        for retriever in retrievers.values():  # numba compiles on the first call: not timed
            _bm25s_search(retriever, questions[:2], K)
        single = questions[:ONE_AT_A_TIME]
        fns = {"ours batch": lambda: index.search(questions, K)}
        fns |= {f"bm25s {p} batch": (lambda r=r: _bm25s_search(r, questions, K)) for p, r in retrievers.items()}
        fns["ours one"] = lambda: [index.search(q, K) for q in single]
        fns |= {f"bm25s {p} one": (lambda r=r: [_bm25s_search(r, [q], K) for q in single])
                for p, r in retrievers.items()}
        timings = measure(fns, repeats=3 if quick else 7, keep_slow_warmup=False)

        ours_ids = index.search(questions, K)[0]
        all_scores = index.scores(questions)
        checks = {p: _same_top_k(ours_ids, _bm25s_search(r, questions, K), all_scores) for p, r in retrievers.items()}
        per_query = {name: t.median / (len(questions) if name.endswith("batch") else len(single))
                     for name, t in timings.items()}
        for mode in ("batch", "one"):
            ours = per_query[f"ours {mode}"]
            row = [fmt_n(n), f"{len(questions)} at once" if mode == "batch" else "one at a time", fmt_ms(ours)]
            for p in peers:
                theirs = per_query[f"bm25s {p} {mode}"]
                row += [fmt_ms(theirs), fmt_ratio(theirs / ours)]
            row.append("; ".join(f"{p}: {c}" for p, c in checks.items()))
            query_rows.append(row)
        results.append({"n": n, "build_seconds": {m: t.median for m, t in build.items()},
                        "seconds_per_query": per_query, "top_k": checks})
        print(f"  bm25 N={n}: build ours {build['ours'].ms:.0f} ms; per query ours "
              f"{per_query['ours batch'] * 1e3:.3f} ms (batch), {per_query['ours one'] * 1e3:.3f} ms (one)", flush=True)

    section = Section("BM25: `rag_helpers.engine.bm25` against bm25s")
    section.tables.append(table(["N paragraphs", "`BM25Index().fit` ms",
                                 *(f"bm25s ({p}) ms (÷ ours)" for p in peers)], build_rows))
    header = ["N paragraphs", "queries", "ours ms/query"]
    for p in peers:
        header += [f"bm25s ({p}) ms/query", "bm25s ÷ ours"]
    section.tables.append(table(header + ["top-10"], query_rows))
    section.notes += [
        "The shipped Python FAQ/HOWTO pages cut at blank lines; 10x is that collection repeated 10 times. "
        f"Queries: the {len(questions)} labelled FAQ questions, k = {K}; \"one at a time\" times "
        f"{ONE_AT_A_TIME} single-question calls.",
        "Both sides tokenize with `rag_helpers.engine.bm25.tokenize` inside the timing (k1 = 1.5, b = 0.75, Lucene idf). "
        f"bm25s {bm25s.__version__}; its numba backend is compiled before timing.",
        "Ratios above 1 mean ours is faster. top-10: bm25s picks its k best with argpartition and leaves tied "
        "documents in no particular order; ours puts the lower index first.",
    ]
    section.raw = {"results": results}
    agree = all(not c.startswith("MISMATCH") for r in results for c in r["top_k"].values())
    section.goals.append(Goal("BM25 top-10 identical to bm25s's (up to the order of tied documents)",
                              "yes" if agree else "MISMATCH (see the table)", agree))
    return section
