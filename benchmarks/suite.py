"""7. The test suite's time: each test file and each notebook, so its cost stays visible.

Runs the README's test command (``pytest tests --nbmake notebooks``) once,
with a JUnit XML report in a temporary file, and adds up the time of every
test by file. A test's time includes its setup, so a file that is first to
load a model pays for loading it.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

from .common import Section, table

ROOT = Path(__file__).resolve().parent.parent


def _file_of(case: ET.Element) -> str:
    """The test file or notebook of a JUnit test case, relative to the repository."""
    # pytest writes classname "tests.test_x" (or "tests.test_x.TestClass");
    # nbmake writes the notebook's path with dots, "notebooks.solutions.01_x.ipynb".
    classname = case.get("classname", "")
    if classname.endswith(".ipynb"):
        path = "/".join(classname.removesuffix(".ipynb").split(".")) + ".ipynb"
        return path if (ROOT / path).is_file() else classname
    parts = classname.split(".")
    for cut in range(len(parts), 0, -1):
        candidate = "/".join(parts[:cut]) + ".py"
        if (ROOT / candidate).is_file():
            return candidate
    return classname or case.get("name", "?")


def tabulate(report: Path) -> tuple[list[list[object]], dict[str, float], int, float]:
    """Rows of the per-file table from a JUnit report; also seconds per file, failures, notebook seconds."""
    cases = list(ET.parse(report).getroot().iter("testcase"))
    per_file: dict[str, list[float]] = defaultdict(list)
    failed: dict[str, int] = defaultdict(int)
    for case in cases:
        name = _file_of(case)
        per_file[name].append(float(case.get("time", 0.0)))
        if case.find("failure") is not None or case.find("error") is not None:
            failed[name] += 1
    rows: list[list[object]] = []
    for name, times in sorted(per_file.items(), key=lambda item: -sum(item[1])):
        kind = "notebook" if name.endswith(".ipynb") else "tests"
        rows.append([f"`{name}`", kind, len(times), f"{sum(times):.1f}", f"{max(times):.1f}", failed[name] or ""])
    total = sum(sum(t) for t in per_file.values())
    rows.append(["**all**", "", len(cases), f"**{total:.1f}**", "", sum(failed.values()) or ""])
    seconds = {name: sum(times) for name, times in per_file.items()}
    notebooks = sum(t for name, t in seconds.items() if name.endswith(".ipynb"))
    return rows, seconds, sum(failed.values()), notebooks


def run(quick: bool = False) -> Section:
    env = dict(os.environ, HF_HUB_OFFLINE=os.environ.get("HF_HUB_OFFLINE", "1"))
    with tempfile.TemporaryDirectory(prefix="rag-bench-suite-") as tmp:
        report = Path(tmp) / "junit.xml"
        command = [sys.executable, "-m", "pytest", "tests", "--nbmake", "notebooks",
                   "--nbmake-kernel=python3", "--nbmake-timeout=300", "-p", "no:cacheprovider", "-q",
                   f"--junitxml={report}"]
        print("  " + " ".join(command[2:]), flush=True)
        start = time.perf_counter()
        completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if not report.is_file():
            raise RuntimeError(f"pytest wrote no report:\n{completed.stdout[-2000:]}\n{completed.stderr[-2000:]}")
        rows, seconds, n_failed, notebooks = tabulate(report)
    total = sum(seconds.values())

    section = Section("7. The test suite's time")
    section.tables.append(table(["file", "kind", "tests", "seconds", "slowest test s", "failed"], rows))
    section.notes += [
        f"`pytest tests --nbmake notebooks` (exit code {completed.returncode}): {wall:.0f} s wall in all, "
        f"of which notebooks {notebooks:.0f} s and unit tests {total - notebooks:.0f} s (sum of test times).",
        "A test's time includes its fixtures' setup: the first file that needs a model pays for loading it.",
    ]
    section.raw = {"per_file": seconds, "wall_s": wall, "failed": n_failed, "returncode": completed.returncode}
    print(f"  suite: {wall:.0f} s, {n_failed} failed, exit code {completed.returncode}", flush=True)
    return section


def update(paths: list[str]) -> int:
    """Time only ``paths`` (test files or notebooks) and put their rows into SUITE.md, keeping the others.

    For a new or changed notebook between two full runs: ``python -m benchmarks.suite notebooks/11_x.ipynb``.
    The "all" row and the notes stay those of the last full run, which the file says.
    """
    env = dict(os.environ, HF_HUB_OFFLINE=os.environ.get("HF_HUB_OFFLINE", "1"))
    suite_file = ROOT / "benchmarks" / "SUITE.md"
    with tempfile.TemporaryDirectory(prefix="rag-bench-suite-") as tmp:
        report = Path(tmp) / "junit.xml"
        command = [sys.executable, "-m", "pytest", *paths, "--nbmake-kernel=python3", "--nbmake-timeout=300",
                   "-p", "no:cacheprovider", "-q", f"--junitxml={report}"]
        if any(p.endswith(".ipynb") for p in paths):
            command.insert(3 + len(paths), "--nbmake")
        completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        if not report.is_file():
            print(completed.stdout[-2000:], completed.stderr[-2000:])
            return 1
        rows, _, n_failed, _ = tabulate(report)
    lines = suite_file.read_text().splitlines()
    new = {row[0]: "| " + " | ".join(str(c) for c in row) + " |" for row in rows if row[0] != "**all**"}
    for i, line in enumerate(lines):
        name = line.split(" | ")[0].removeprefix("| ")
        if name in new:
            lines[i] = new.pop(name)
    at = next(i for i, line in enumerate(lines) if line.startswith("| **all**"))
    lines[at:at] = list(new.values())
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    note = f"- Rows of {', '.join(f'`{p}`' for p in paths)} measured again on {stamp} " \
           f"(`python -m benchmarks.suite {' '.join(paths)}`); the rest, and the total, are the last full run's."
    lines.append(note)
    suite_file.write_text("\n".join(lines) + "\n")
    for row in rows:
        print(" | ".join(str(c) for c in row))
    return 1 if n_failed else 0


if __name__ == "__main__":
    sys.exit(update(sys.argv[1:]))
