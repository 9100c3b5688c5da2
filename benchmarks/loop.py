"""3. The pure-Python loop against one matrix-vector product (notebook 03's curve).

``cosine_scores_loop`` multiplies and adds one number at a time in Python;
``cosine_scores`` is one BLAS call plus the package's checks; ``docs @ q`` is
the BLAS call alone.
"""
from __future__ import annotations

import numpy as np

import rag_helpers as rh

from .common import SEED, Goal, Section, fmt_ms, fmt_n, fmt_ratio, measure, random_unit_vectors, table

SIZES = [10**2, 10**3, 10**4, 10**5]
QUICK_SIZES = [10**2, 10**3, 10**4]


def run(quick: bool = False) -> Section:
    sizes = QUICK_SIZES if quick else SIZES
    query = random_unit_vectors(1, seed=SEED + 1)[0]
    rows, results = [], []
    for n in sizes:
        docs = random_unit_vectors(n)
        fns = {
            "loop": lambda: rh.cosine_scores_loop(query, docs),
            "cosine_scores": lambda: rh.cosine_scores(query, docs),
            "matvec": lambda: docs @ query,
        }
        timings = measure(fns, repeats=3 if quick else 5, max_seconds=6.0)
        diff = float(np.abs(fns["loop"]() - fns["cosine_scores"]()).max())
        s = {m: t.median for m, t in timings.items()}
        speedup = s["loop"] / s["cosine_scores"]
        rows.append([fmt_n(n), fmt_ms(s["loop"]), fmt_ms(s["cosine_scores"]), fmt_ms(s["matvec"]),
                     fmt_ratio(speedup), fmt_ratio(s["loop"] / s["matvec"]), f"{diff:.1e}"])
        results.append({"n": n, "seconds": s, "speedup": speedup, "max_abs_diff": diff})
        print(f"  loop N={fmt_n(n)}: loop {timings['loop'].ms:.2f} ms, "
              f"cosine_scores {timings['cosine_scores'].ms:.3f} ms", flush=True)

    section = Section("3. The Python loop against the vectorized product")
    section.tables.append(table(
        ["N", "`cosine_scores_loop` ms", "`cosine_scores` ms", "`docs @ q` ms", "speed-up (package)",
         "speed-up (bare product)", "max |difference|"], rows))
    section.notes.append("One 384-d query; the loop and the product give the same numbers to float32 rounding "
                         "(last column). The package's speed-up includes its input checks.")
    section.raw = {"results": results}
    top = results[-1]
    section.goals.append(Goal(
        "the loop-vs-vectorized speed-up shows hundreds of times",
        f"{fmt_ratio(top['speedup'])} at N = {fmt_n(top['n'])}", top["speedup"] >= 100))
    return section
