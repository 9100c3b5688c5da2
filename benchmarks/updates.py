"""An index that keeps up with a folder: a full build, a one-file update and a no-change run.

Each run is a fresh Python process (``python -c``) that loads the encoder, then times
``update_folder_index`` alone, and reports its own peak resident memory (``getrusage(RUSAGE_SELF)``
in that process: nothing of this driver's memory is in it). The folders are synthetic notes:
at 1e3 and 1e4 chunks, one file per chunk (1e4 files: the issue's "10,000 files" case); at 1e5,
10,000 files of 10 chunks. The one-file update appends a sentence to one file; the no-change run
changes nothing.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from .common import Goal, Section, fmt_n, table

SIZES = [10**3, 10**4]  # 1e5 (10,000 files of 10 chunks) works the same; its full build embeds for ~17 min here
QUICK_SIZES = [10**3]
GOAL_SECONDS = 5.0
_CHILD = r"""
import json, resource, sys, time
from rag_helpers.engine.embeddings import load_encoder
from rag_helpers.engine.folder_index import update_folder_index
encoder = load_encoder()
start = time.perf_counter()
result = update_folder_index(sys.argv[1], [sys.argv[2]], encoder, chunk_tokens=64, overlap=0)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "chunks": len(result), "embedded": result.embedded,
                  "reused": result.reused, "removed": result.removed,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _write_notes(folder: Path, n_chunks: int) -> tuple[int, Path]:
    """Files of short notes, ``n_chunks`` chunks of at most 64 tokens in all; returns (files, one file)."""
    per_file = 1 if n_chunks <= 10**4 else 10
    files = n_chunks // per_file
    for f in range(files):
        sub = folder / f"part{f // 1000:03d}"
        sub.mkdir(exist_ok=True)
        paragraphs = [f"Note {f}.{p}: the station at site {f * per_file + p} logged {p + f % 97} mm of rain, "
                      f"and team {f % 13} checked sensor {p}." for p in range(per_file)]
        # One paragraph is about 30 tokens: a blank line between two never joins them into one chunk of 64.
        (sub / f"note{f:06d}.txt").write_text(("\n\n" + "x " * 40 + "\n\n").join(paragraphs) + "\n")
    return files, folder / "part000" / "note000000.txt"


def _run(index: Path, docs: Path) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    done = subprocess.run([sys.executable, "-c", _CHILD, str(index), str(docs)], capture_output=True, text=True,
                          env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(quick: bool = False) -> Section:
    rows, raw = [], []
    for n in QUICK_SIZES if quick else SIZES:
        with tempfile.TemporaryDirectory() as tmp:
            docs, index = Path(tmp) / "docs", Path(tmp) / "index"
            docs.mkdir()
            files, one = _write_notes(docs, n)
            build = _run(index, docs)
            unchanged = _run(index, docs)
            one.write_text(one.read_text() + "\nAdded today: the sensor was replaced.\n")
            edited = _run(index, docs)
        for name, r in (("full build", build), ("one file changed", edited), ("no change", unchanged)):
            rows.append([fmt_n(r["chunks"]), f"{files:,}", name, f"{r['seconds']:.2f}", f"{r['embedded']:,}",
                         f"{r['reused']:,}", f"{r['removed']:,}", f"{r['peak_mib']:,.0f}"])
        raw.append({"n": n, "files": files, "build": build, "no_change": unchanged, "one_file": edited})
        print(f"  updates N={fmt_n(n)}: build {build['seconds']:.1f} s, one file {edited['seconds']:.2f} s, "
              f"no change {unchanged['seconds']:.2f} s", flush=True)

    section = Section("Updates: an index that keeps up with a folder (`--index`)")
    section.tables.append(table(
        ["chunks", "files", "run", "update s", "embedded", "reused", "removed", "peak MiB (whole process)"], rows))
    section.notes += [
        "Each run is a fresh process; `update s` times `update_folder_index` alone (reading and hashing every "
        "file, chunking and embedding what changed, writing a new generation of the index); the encoder's "
        "load is not in it. Peak memory is the process's own `ru_maxrss`, encoder included.",
        "A one-file update re-embeds only the chunks whose text changed, and rewrites the index "
        "(vectors, texts, SHA-256 of every byte) so that a kill at any moment leaves the old or the new one.",
    ]
    ten_thousand = next((r for r in raw if r["files"] == 10**4 and r["n"] == 10**4), None)
    if ten_thousand is not None:
        took = ten_thousand["one_file"]["seconds"]
        section.goals.append(Goal("10,000 files indexed: changing one file and asking again takes under 5 s "
                                  "of update", f"{took:.2f} s", took < GOAL_SECONDS))
    section.raw = {"runs": raw}
    return section
