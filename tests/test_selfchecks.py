"""tools/selfchecks.py itself: check cells defined once, copied exactly, every notebook covered.

The self-checks of each notebook are tested in tests/test_selfchecks_NN.py, with the five tests
of tests/selfcheck_suite.py: the solution passes, the empty exercise is "not attempted yet",
and every known wrong answer is rejected.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import selfchecks  # noqa: E402

NOTEBOOKS = {path.stem: path for path in selfchecks.course_notebooks()}


def test_every_course_notebook_has_its_self_check_tests():
    assert len(NOTEBOOKS) >= 10
    for stem, path in NOTEBOOKS.items():
        assert (ROOT / "tests" / f"test_selfchecks_{stem[:2]}.py").exists(), stem
        assert selfchecks.problems(path) == [], stem
        assert len(selfchecks.tagged_cells(path, "self-check")) >= 2, stem


def copy_course(tmp_path: Path) -> Path:
    """A copy of notebook 01 and its solutions, to change freely."""
    notebook = tmp_path / NOTEBOOKS["01_embeddings"].name
    shutil.copy(NOTEBOOKS["01_embeddings"], notebook)
    (tmp_path / "solutions").mkdir()
    shutil.copy(selfchecks.solutions_path(NOTEBOOKS["01_embeddings"]), selfchecks.solutions_path(notebook))
    return notebook


def test_sync_copies_a_changed_check_and_nothing_else(tmp_path):
    notebook = copy_course(tmp_path)
    solutions = selfchecks.solutions_path(notebook)
    before = json.loads(solutions.read_text(encoding="utf-8"))

    nb = json.loads(notebook.read_text(encoding="utf-8"))
    check = next(c for c in nb["cells"] if "self-check" in c["metadata"].get("tags", []))
    check["source"].append("\nprint('one more line')")
    notebook.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    assert any("differs" in problem for problem in selfchecks.problems(notebook))

    assert selfchecks.sync(notebook) is True
    assert selfchecks.problems(notebook) == []
    after = json.loads(solutions.read_text(encoding="utf-8"))
    changed = [i for i, (a, b) in enumerate(zip(before["cells"], after["cells"])) if a != b]
    assert len(before["cells"]) == len(after["cells"]) and len(changed) == 1
    assert after["cells"][changed[0]]["metadata"]["tags"] == ["self-check"]
    assert selfchecks.sync(notebook) is False  # nothing left to copy


def test_check_reports_a_missing_check_cell(tmp_path):
    notebook = copy_course(tmp_path)
    solutions = selfchecks.solutions_path(notebook)
    nb = json.loads(solutions.read_text(encoding="utf-8"))
    nb["cells"] = [c for c in nb["cells"] if c["metadata"].get("exercise") != "exercise-2"
                   or "self-check" not in c["metadata"].get("tags", [])]
    solutions.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    assert any("exercise-2: no cell tagged" in problem for problem in selfchecks.problems(notebook))
    with pytest.raises(ValueError, match="exercise-2"):
        selfchecks.sync(notebook)
