"""The command line over a large ``--lines`` file: time and peak memory, cold and warm cache.

A user's first large run is the one that hurts: 100,000 one-line documents
must all be embedded before the first answer. This runs the real command in
a subprocess, as a user would, twice: with an empty embedding cache (cold)
and again (warm: the embeddings come from the cache). Peak memory is the
child's maximum resident set size. The lines are sentences of the shipped
Python-docs corpus, repeated with a number so that each line is distinct.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import Section, table

LINES = 100_000
QUICK_LINES = 2_000
K = 3


def _sentences() -> list[str]:
    from rag_helpers.engine.corpus import load_python_docs

    text = " ".join(doc.text for doc in load_python_docs())
    parts = [" ".join(s.split()) for s in re.split(r"(?<=[.?!])\s+", text)]
    return [p for p in parts if 40 <= len(p) <= 200]


def _run_cli(path: Path, cache: Path) -> tuple[float, float, str]:
    """(wall seconds, peak RSS GiB of this command alone, its stderr)."""
    env = dict(os.environ, RAG_CACHE_DIR=str(cache), HF_HUB_OFFLINE="1")
    command = [sys.executable, "-m", "rag_helpers", "How do I read a file line by line?",
               "--lines", str(path), "-k", str(K), "--max-new-tokens", "8", "--no-stream"]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=err, text=True, env=env)
        # wait4 gives this child's own peak RSS. (getrusage(RUSAGE_CHILDREN) is
        # the largest of every child this process ever waited for: after the
        # scale part's, not this command's.)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read()
    if child.returncode != 0:
        raise RuntimeError(f"the command failed: {stderr[-2000:]}")
    return seconds, usage.ru_maxrss / 2**20, stderr  # ru_maxrss is in KiB on Linux


def run(quick: bool = False) -> Section:
    n = QUICK_LINES if quick else LINES
    sentences = _sentences()
    with tempfile.TemporaryDirectory() as tmp:
        path, cache = Path(tmp) / "lines.txt", Path(tmp) / "cache"
        # One run on a file of K lines first, so that the generator's one-time
        # conversion is not counted as the cost of a large input.
        (Path(tmp) / "few.txt").write_text("".join(s + "\n" for s in sentences[:K]))
        _run_cli(Path(tmp) / "few.txt", cache)
        path.write_text("".join(f"{sentences[i % len(sentences)]} ({i})\n" for i in range(n)))
        cold_s, cold_gib, cold_err = _run_cli(path, cache)
        warm_s, warm_gib, warm_err = _run_cli(path, cache)
        size_mb = path.stat().st_size / 1e6
    assert "Embeddings loaded from the cache" in warm_err, warm_err[-1000:]
    section = Section("Large input: the command line over a big --lines file")
    section.tables.append(table(
        ["lines", "file MB", "cold cache: wall s", "cold: peak RSS GiB", "warm cache: wall s", "warm: peak RSS GiB"],
        [[f"{n:,}", f"{size_mb:.1f}", f"{cold_s:.0f}", f"{cold_gib:.2f}", f"{warm_s:.1f}", f"{warm_gib:.2f}"]]))
    section.notes.append(
        "`python -m rag_helpers QUESTION --lines FILE -k 3 --max-new-tokens 8 --no-stream` in a subprocess, "
        "a RAG_CACHE_DIR holding only the converted generator first (every line embedded, with a progress bar and its expected time), then "
        "again (embeddings from the cache). Wall time includes loading both models and the short answer; peak RSS is the command's own (`os.wait4`).")
    section.raw = {"lines": n, "cold_s": cold_s, "warm_s": warm_s, "peak_gib": cold_gib, "warm_peak_gib": warm_gib, "file_mb": size_mb}
    return section
