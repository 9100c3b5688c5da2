"""What every benchmark shares: timing, test data, the machine's description, tables."""
from __future__ import annotations

import gc
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DIM = 384  # all-MiniLM-L6-v2's embedding size
SEED = 0


@dataclass
class Timing:
    """Seconds per call: the median of ``samples`` (warm-up excluded)."""

    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def ms(self) -> float:
        return self.median * 1e3


def timed_once(fn: Callable[[], object]) -> float:
    """Seconds for one call of ``fn``."""
    # Like timeit: no garbage collection in the middle of a measurement.
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    finally:
        if enabled:
            gc.enable()


#: Calls faster than this get an untimed call of their own just before each timed one.
REWARM_BELOW_S = 0.1
# Untimed calls before each timed one last at least this long (seconds):
# measured here, 5 ms was not enough for the previous library's threads to
# go quiet (a search timed after torch took 1.4x as long as after NumPy),
# 20 ms nearly, 100 ms in every order tried.
REWARM_S = 0.1


def measure(
    fns: dict[str, Callable[[], object]],
    *,
    repeats: int = 5,
    max_seconds: float = 6.0,
    keep_slow_warmup: bool = True,
) -> dict[str, Timing]:
    """Time each function ``repeats`` times after one warm-up call; medians in ``Timing``.

    The functions take turns (A B C, A B C, ...), so a slow minute on a
    shared machine hurts them all alike and the ratios stay fair. Taking
    turns has a catch: after a call, a library's worker threads (OpenBLAS,
    faiss's and torch's OpenMP) spin for a moment waiting for more work, or
    fall asleep; either would cost the next library time that is not its
    own. So a fast function (under ``REWARM_BELOW_S``) is called untimed,
    again and again for ``REWARM_S``, right before each timed call: it is
    measured as it runs in a loop of queries, with its own threads awake and
    nobody else's.

    A function whose warm-up call shows that ``repeats`` calls would take
    more than ``max_seconds`` is timed 3 times only; one slower than a second
    keeps its warm-up call as a sample (at that size a warm-up changes
    nothing), unless ``keep_slow_warmup`` is False.
    """
    warm = {name: timed_once(fn) for name, fn in fns.items()}
    samples: dict[str, list[float]] = {
        name: [t] if t > 1.0 and keep_slow_warmup else [] for name, t in warm.items()
    }
    wanted = {
        name: max(3, min(repeats, int(max_seconds / max(t, 1e-9)))) for name, t in warm.items()
    }
    while any(len(samples[n]) < wanted[n] for n in fns):
        for name, fn in fns.items():
            if len(samples[name]) < wanted[name]:
                if warm[name] < REWARM_BELOW_S:
                    # Calls for at least REWARM_S: one call can be shorter than
                    # the previous library's threads keep spinning.
                    until = time.perf_counter() + REWARM_S
                    fn()
                    while time.perf_counter() < until:
                        fn()
                samples[name].append(timed_once(fn))
    return {name: Timing(samples[name]) for name in fns}


def random_unit_vectors(n: int, dim: int = DIM, *, seed: int = SEED) -> np.ndarray:
    """(n, dim) float32 rows drawn uniformly on the unit sphere, made in chunks to save memory."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 1 << 16):
        block = out[start : start + (1 << 16)]
        rng.standard_normal(block.shape, dtype=np.float32, out=block)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
    return out


def same_ranking(found: np.ndarray, expected: np.ndarray, queries: np.ndarray, docs: np.ndarray,
                 tol: float = 1e-6) -> tuple[str, bool]:
    """Compare two (q, k) index lists: ``("identical", True)``, a near-tie note, or a mismatch.

    Two programs may round a 384-term dot product differently in the last bit
    (BLAS kernels sum in different orders), which can swap two documents
    whose scores differ by less than that. Such a swap is not a wrong answer:
    the rank-by-rank scores, recomputed in float64, still agree within
    ``tol``. Anything else is reported as a mismatch.
    """
    found = np.atleast_2d(found)
    expected = np.atleast_2d(expected)
    if found.shape == expected.shape and np.array_equal(found, expected):
        return "identical", True
    if found.shape != expected.shape:
        return f"MISMATCH: shape {found.shape} vs {expected.shape}", False
    q64 = np.atleast_2d(queries).astype(np.float64)
    rows = np.flatnonzero((found != expected).any(axis=1))
    swapped = 0
    for r in rows:
        s_found = docs[found[r]].astype(np.float64) @ q64[r]
        s_expected = docs[expected[r]].astype(np.float64) @ q64[r]
        if np.abs(s_found - s_expected).max() > tol:
            return f"MISMATCH in query {r}", False
        swapped += int(np.count_nonzero(found[r] != expected[r]))
    return f"same up to {swapped} near-tie swap(s) (|Δ| < {tol:g})", True


def machine_info() -> dict[str, str]:
    """The facts a reader needs to compare these numbers with their own."""
    import psutil
    import threadpoolctl

    info: dict[str, str] = {}
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info["CPU"] = cpu
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info["cores"] = f"{usable} usable ({os.cpu_count()} online)"
    info["memory"] = f"{psutil.virtual_memory().total / 2**30:.1f} GiB"
    info["OS"] = f"{platform.system()} {platform.release()}"
    info["Python"] = platform.python_version()
    info["NumPy"] = np.__version__
    # Every thread pool loaded (faiss and torch bring their own), named by the
    # package that ships it; NumPy's BLAS is the one rag_helpers uses.
    for pool in sorted(threadpoolctl.threadpool_info(), key=lambda p: "numpy" not in p.get("filepath", "")):
        path = Path(pool.get("filepath", ""))
        package = next((part for part in path.parts[::-1] if part.endswith((".libs", "lib")) and part != "lib"),
                       path.parent.parent.name).removesuffix(".libs").removesuffix("_cpu")
        detail = f"{pool.get('internal_api')} {pool.get('version') or ''}".strip()
        if pool.get("architecture"):
            detail += f", kernel {pool['architecture']}"
        detail += f", {pool.get('num_threads')} threads ({path.name})"
        key = f"{pool.get('user_api', 'pool')} in {package}"
        info[key if key not in info else f"{key} ({path.name})"] = detail
    blas_env = {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS", "OMP_", "MKL_"))}
    info["BLAS environment"] = ", ".join(f"{k}={v}" for k, v in sorted(blas_env.items())) or "(none set)"
    if os.environ.get("_BENCH_REEXEC"):
        info["BLAS environment"] += (" (set by the benchmark: faiss's own OpenBLAS did not recognise this CPU "
                                     "and fell back to a generic kernel; now it uses NumPy's)")
    try:
        import torch

        info["torch"] = (f"{torch.__version__}, {torch.get_num_threads()} threads, MKL "
                         f"{'yes' if torch.backends.mkl.is_available() else 'no'}, CUDA "
                         f"{'yes' if torch.cuda.is_available() else 'no'}")
    except ImportError:
        pass
    try:
        import faiss

        info["faiss"] = f"{faiss.__version__}, {faiss.omp_get_max_threads()} OpenMP threads"
    except ImportError:
        info["faiss"] = "not installed"
    try:
        import sentence_transformers
        import transformers

        info["sentence-transformers"] = sentence_transformers.__version__
        info["transformers"] = transformers.__version__
    except ImportError:
        pass
    return info


def load_average() -> str:
    if not hasattr(os, "getloadavg"):
        return "n/a"
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


@dataclass
class Goal:
    """One goal of the issue: what was asked, what was measured, and whether it holds."""

    text: str
    measured: str
    met: bool | None  # None: could not be measured here


@dataclass
class Section:
    """A part's results: tables in markdown, notes, goals, and raw numbers for the plot."""

    title: str
    tables: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    raw: dict = field(default_factory=dict)

    def markdown(self) -> str:
        parts = [f"## {self.title}", ""]
        for table in self.tables:
            parts += [table, ""]
        parts += [f"- {note}" for note in self.notes]
        return "\n".join(parts).rstrip() + "\n"


def table(header: list[str], rows: list[list[object]]) -> str:
    """A markdown table; numbers already formatted by the caller."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt_ms(seconds: float) -> str:
    ms = seconds * 1e3
    if ms >= 100:
        return f"{ms:,.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    if ms >= 1:
        return f"{ms:.2f}"
    return f"{ms:.3f}"


def fmt_ratio(x: float) -> str:
    return f"{x:,.0f}x" if x >= 100 else f"{x:.2f}x"


def fmt_n(n: int) -> str:
    exponent = int(round(np.log10(n)))
    return f"1e{exponent}" if 10**exponent == n else f"{n:,}"


def faiss_blas_search(index, queries: np.ndarray, k: int):
    """``index.search`` with FAISS forced onto BLAS (by default it uses BLAS only for large batches)."""
    import faiss

    old = faiss.cvar.distance_compute_blas_threshold
    faiss.cvar.distance_compute_blas_threshold = 0
    try:
        return index.search(queries, k)
    finally:
        faiss.cvar.distance_compute_blas_threshold = old
