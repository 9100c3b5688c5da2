"""The command line over a large ``--lines`` file: time and peak memory, cold and warm cache.

A user's first large run is the one that hurts: 100,000 one-line documents
must all be embedded before the first answer. This runs the real command in
a subprocess, as a user would, twice per size: with an empty embedding cache
(cold) and again (warm: the embeddings come from the cache). The lines are
sentences of the shipped Python-docs corpus, repeated with a number so that
each line is distinct.

Peak memory is the command's own maximum resident set size, read by a fresh,
small driver process that starts it and waits for it (``os.wait4``). Read
from this benchmark's own process instead, it would be wrong: on Linux a
child's peak starts from the pages it shares with its parent between
``fork`` and ``exec``, and this process may hold gigabytes by then (the
scale part runs before it): that once made a 2 GiB run read as 7.18 GiB.
The driver's own peak is recorded too, as the floor of what it can report.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import Section, table

LINES = (10_000, 30_000, 100_000)
QUICK_LINES = (2_000,)
WARM_UP_LINES = 100
K = 3

# ``python -c _DRIVER REPORT COMMAND...``: runs COMMAND, writes its exit code, its peak RSS
# and the driver's own to REPORT, in KiB (ru_maxrss is in KiB on Linux).
_DRIVER = """
import json, os, resource, subprocess, sys
# What the command's peak includes of the driver (its pages between fork and exec): the driver's
# resident memory now, not its own peak (which counts the copy of the benchmark it was forked as).
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    own = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS:"))
except (OSError, StopIteration):
    pass
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as f:
    json.dump({"exit": os.waitstatus_to_exitcode(status), "peak_kib": usage.ru_maxrss, "driver_kib": own}, f)
"""


def _sentences() -> list[str]:
    from rag_helpers.engine.corpus import load_python_docs

    text = " ".join(doc.text for doc in load_python_docs())
    parts = [" ".join(s.split()) for s in re.split(r"(?<=[.?!])\s+", text)]
    return [p for p in parts if 40 <= len(p) <= 200]


def _run_cli(path: Path, cache: Path) -> tuple[float, float, float, str]:
    """(wall seconds, peak RSS GiB of this command alone, the driver's own peak GiB, its stderr)."""
    env = dict(os.environ, RAG_CACHE_DIR=str(cache), HF_HUB_OFFLINE="1")
    command = [sys.executable, "-m", "rag_helpers", "How do I read a file line by line?",
               "--lines", str(path), "-k", str(K), "--max-new-tokens", "8", "--no-stream"]
    with tempfile.TemporaryFile("w+") as err, tempfile.TemporaryDirectory() as tmp:
        report_path = Path(tmp) / "report.json"
        start = time.perf_counter()
        driver = subprocess.run([sys.executable, "-c", _DRIVER, str(report_path), *command],
                                stdout=subprocess.DEVNULL, stderr=err, text=True, env=env)
        seconds = time.perf_counter() - start
        err.seek(0)
        stderr = err.read()
        report = json.loads(report_path.read_text()) if report_path.exists() else {"exit": None}
    if driver.returncode != 0 or report["exit"] != 0:
        raise RuntimeError(f"the command failed: {stderr[-2000:]}")
    return seconds, report["peak_kib"] / 2**20, report["driver_kib"] / 2**20, stderr


def run(quick: bool = False) -> Section:
    sizes = QUICK_LINES if quick else LINES
    sentences = _sentences()
    rows, raw = [], []
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        # One run on a small file first, so that the one-time work (the generator's conversion, and the
        # encoder's ONNX export, done for lists of 64 texts or more) is not counted as a large input's cost.
        (Path(tmp) / "few.txt").write_text("".join(s + "\n" for s in sentences[:WARM_UP_LINES]))
        _, _, driver_gib, _ = _run_cli(Path(tmp) / "few.txt", cache)
        for n in sizes:
            path = Path(tmp) / f"lines{n}.txt"
            path.write_text("".join(f"{sentences[i % len(sentences)]} ({i})\n" for i in range(n)))
            cold_s, cold_gib, _, _ = _run_cli(path, cache)
            warm_s, warm_gib, _, warm_err = _run_cli(path, cache)
            assert "Embeddings loaded from the cache" in warm_err, warm_err[-1000:]
            size_mb = path.stat().st_size / 1e6
            rows.append([f"{n:,}", f"{size_mb:.1f}", f"{cold_s:.0f}", f"{cold_gib:.2f}", f"{warm_s:.1f}",
                         f"{warm_gib:.2f}"])
            raw.append({"lines": n, "cold_s": cold_s, "warm_s": warm_s, "peak_gib": cold_gib,
                        "warm_peak_gib": warm_gib, "file_mb": size_mb})
            print(f"  large input {n:,} lines: cold {cold_s:.0f} s {cold_gib:.2f} GiB, "
                  f"warm {warm_s:.1f} s {warm_gib:.2f} GiB", flush=True)
    section = Section("Large input: the command line over a big --lines file")
    section.tables.append(table(
        ["lines", "file MB", "cold cache: wall s", "cold: peak RSS GiB", "warm cache: wall s", "warm: peak RSS GiB"],
        rows))
    section.notes.append(
        "`python -m rag_helpers QUESTION --lines FILE -k 3 --max-new-tokens 8 --no-stream` in a subprocess, "
        "a RAG_CACHE_DIR holding only the converted generator and the ONNX export of the encoder first (every line embedded, with a progress bar "
        "and its expected time), then again (embeddings from the cache). Wall time includes loading both models "
        "and the short answer. Peak RSS is the command's own, read by a fresh driver process that starts it "
        f"(`os.wait4`; the driver holds {driver_gib * 1024:.0f} MiB when it starts the command, the floor of what "
        "it can report), "
        "not by this benchmark's process, whose own memory a child's peak would include.")
    section.raw = {"sizes": raw, "driver_peak_gib": driver_gib, **raw[-1]}
    return section
