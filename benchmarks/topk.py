"""2. Top-k: a full ``np.argsort`` against ``rag_helpers.top_k`` (argpartition, then sort k).

The scores are those of one random unit query against N random unit
documents (float32), and, to test the tie rule where it is hardest, the same
scores rounded to two decimals (thousands of exact ties at the k-th place).
"""
from __future__ import annotations

import numpy as np

import rag_helpers as rh

from .common import SEED, Goal, Section, fmt_ms, fmt_n, fmt_ratio, measure, random_unit_vectors, table

SIZES = [10**3, 10**4, 10**5, 10**6]
QUICK_SIZES = [10**3, 10**4, 10**5]
KS = (5, 100)


def _scores(n: int) -> np.ndarray:
    # One query against n documents, made in pieces: no need for the (n, 384) matrix here.
    query = random_unit_vectors(1, seed=SEED + 1)[0]
    parts = [random_unit_vectors(min(1 << 17, n - s), seed=SEED + 2 + s) @ query for s in range(0, n, 1 << 17)]
    return np.concatenate(parts)


def run(quick: bool = False) -> Section:
    sizes = QUICK_SIZES if quick else SIZES
    rows, results = [], []
    for n in sizes:
        for rounded in (False, True):
            if rounded and n != max(sizes):
                continue
            scores = _scores(n)
            if rounded:
                scores = np.round(scores, 2)
            for k in KS:
                fns = {
                    "argsort": lambda: np.argsort(-scores, kind="stable")[:k],
                    "top_k": lambda: rh.top_k(scores, k),
                }
                timings = measure(fns, repeats=3 if quick else 7)
                same = np.array_equal(fns["argsort"](), fns["top_k"]())
                speedup = timings["argsort"].median / timings["top_k"].median
                label = fmt_n(n) + (" (rounded: ties)" if rounded else "")
                rows.append([label, k, fmt_ms(timings["argsort"].median), fmt_ms(timings["top_k"].median),
                             fmt_ratio(speedup), "identical" if same else "MISMATCH"])
                results.append({"n": n, "k": k, "rounded": rounded, "speedup": speedup, "same": same,
                                "seconds": {m: t.median for m, t in timings.items()}})
                print(f"  top-k N={label} k={k}: argsort {timings['argsort'].ms:.3f} ms, "
                      f"top_k {timings['top_k'].ms:.3f} ms", flush=True)

    section = Section("2. Top-k: `np.argsort` against `rag_helpers.top_k`")
    section.tables.append(table(
        ["N", "k", "`np.argsort(-s, kind=\"stable\")[:k]` ms", "`top_k(s, k)` ms", "speed-up", "result"], rows))
    section.notes.append("float32 scores of a random unit query against N random unit documents; "
                         "\"rounded\" rounds them to 2 decimals, so the k-th place is a tie among thousands.")
    section.raw = {"results": results}
    top = max(sizes)
    worst = min(r["speedup"] for r in results if r["n"] == top)
    section.goals += [
        Goal(f"top_k at least 10x faster than a full argsort at N = {fmt_n(top)}"
             + (" (--quick: 1e6 not run)" if top < 10**6 else ""),
             f"{fmt_ratio(worst)} (worst of k = 5, 100, ties included)", worst >= 10),
        Goal("top_k identical to the stable argsort", "identical in every case"
             if all(r["same"] for r in results) else "MISMATCH (see the table)", all(r["same"] for r in results)),
    ]
    return section
