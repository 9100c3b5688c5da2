"""The notebooks read as intended: what JupyterLab renders is what their authors wrote.

Markdown is parsed with markdown-it-py, a CommonMark parser (JupyterLab's renderer,
marked, follows CommonMark on these points): a heading written with four spaces in front
is not a heading but an indented code block, and so is any prose indented that way.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import notebook_tools  # noqa: E402

PATHS = notebook_tools.notebook_paths()
COURSE = [p for p in PATHS if p.parent.name == "notebooks"]
PARSER = MarkdownIt("commonmark")


def markdown_cells(path: Path) -> list[str]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]


def first_markdown(path: Path) -> str:
    cells = markdown_cells(path)
    assert cells, f"{path.name} has no markdown cell"
    return cells[0]


def ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(ROOT / "notebooks")) for p in paths]


def test_every_notebook_is_covered():
    assert len(COURSE) >= 7 and len(PATHS) >= 14


@pytest.mark.parametrize("path", PATHS, ids=ids(PATHS))
def test_first_markdown_cell_opens_with_a_title_that_renders_as_one(path):
    text = first_markdown(path)
    assert text.startswith("# "), f"{path.name}: the first markdown cell starts with {text[:12]!r}, not '# '"
    tokens = PARSER.parse(text)
    assert tokens[0].type == "heading_open" and tokens[0].tag == "h1", (
        f"{path.name}: the first markdown cell renders as {tokens[0].type}, not as a title (h1)"
    )
    assert sum(t.type == "heading_open" and t.tag == "h1" for t in tokens) == 1, f"{path.name}: one title only"


@pytest.mark.parametrize("path", PATHS, ids=ids(PATHS))
def test_no_markdown_renders_as_code_by_accident(path):
    # Code in prose is fenced (```); a block indented by four spaces is prose that lost its formatting.
    for number, text in enumerate(markdown_cells(path), start=1):
        blocks = [t for t in PARSER.parse(text) if t.type == "code_block"]
        assert not blocks, (
            f"{path.name}, markdown cell {number}: indented text renders as code: {blocks[0].content[:80]!r} "
            "(remove the indent, or fence real code with ```)"
        )


@pytest.mark.parametrize("path", COURSE, ids=ids(COURSE))
def test_first_cell_says_how_long_it_runs_and_what_a_gpu_changes(path):
    # One voice across the course: the same two lines, in the same place, after the objectives.
    text = first_markdown(path)
    objectives = text.find("**What you will learn**")
    runtime = re.search(r"^Runs in \d+ to \d+ s on a 2-core CPU", text, re.MULTILINE)
    gpu = text.find("> **On a GPU runtime**")
    assert objectives >= 0, f"{path.name}: no '**What you will learn**' in the first markdown cell"
    assert runtime, f"{path.name}: no 'Runs in N to M s on a 2-core CPU' line in the first markdown cell"
    assert objectives < runtime.start() < gpu, f"{path.name}: objectives, then the runtime line, then the GPU note"
    tokens = PARSER.parse(text[gpu:])
    assert tokens[0].type == "blockquote_open", f"{path.name}: the GPU note should render as a quote"


def test_the_course_counts_six_steps_everywhere():
    for path in COURSE:
        for text in markdown_cells(path):
            for number in ("four", "five", "seven"):
                assert not re.search(rf"\b{number} steps\b", text, re.IGNORECASE), f"{path.name}: '{number} steps'"
    # The first notebook introduces the six steps; 07 assembles them.
    assembled = next(p for p in COURSE if p.name.startswith("07_"))
    assert "six steps" in first_markdown(COURSE[0]) and "six steps" in first_markdown(assembled)


def test_the_parser_tells_a_title_from_an_indented_one():
    # What the tests above rely on: the bug they catch is visible to this parser.
    assert PARSER.parse("# Title\n\ntext")[0].type == "heading_open"
    indented = PARSER.parse("    # Title\n\n    **bold** text")
    assert [t.type for t in indented] == ["code_block"]


def _suite_seconds() -> dict[str, float]:
    """notebook path -> seconds, from the last `python -m benchmarks suite` run (benchmarks/SUITE.md)."""
    rows = re.findall(r"^\| `(notebooks/[^`]+\.ipynb)` \| notebook \| \d+ \| ([\d.]+) \|",
                      (ROOT / "benchmarks" / "SUITE.md").read_text(), re.MULTILINE)
    return {path: float(seconds) for path, seconds in rows}


def test_every_notebook_ran_under_90_s_in_the_last_suite_run():
    seconds = _suite_seconds()
    assert {str(p.relative_to(ROOT)) for p in PATHS} <= set(seconds), "a notebook is missing from SUITE.md"
    assert not {p: s for p, s in seconds.items() if s >= 90}


@pytest.mark.parametrize("path", COURSE, ids=ids(COURSE))
def test_the_header_does_not_understate_the_measured_run_time(path):
    # "Runs in N to M s": M is at least what the notebook took in the last measured suite run.
    low, high = map(int, re.search(r"^Runs in (\d+) to (\d+) s on a 2-core CPU", first_markdown(path),
                                   re.MULTILINE).groups())
    measured = _suite_seconds()[str(path.relative_to(ROOT))]
    assert low <= high and measured <= high, f"{path.name}: the header says {low} to {high} s, it took {measured} s"
