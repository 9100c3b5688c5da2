"""Each exercise's self-check is written once: in the course notebook. Its solutions
notebook carries an exact copy, so a solution is checked by the very code a learner runs.

    python tools/selfchecks.py sync    # copy every check cell from its notebook into the solutions notebook
    python tools/selfchecks.py check   # exit 1 if a copy differs or a cell is missing (the tests run this)

How the cells are found: by their metadata, not their position. Three code cells share an
"exercise" key ("exercise-1", "exercise-2", ...) and differ by their tag:

    "exercise"    in notebooks/NN_name.ipynb: the function the learner fills in (it returns None)
    "self-check"  in both notebooks: the check, which the notebook's copy defines
    "solution"    in notebooks/solutions/NN_name_solutions.ipynb: the worked answer

`sync` only ever rewrites the source of the solutions notebooks' self-check cells.
"""
from __future__ import annotations

import contextlib
import io
import json
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
TAGS = ("exercise", "self-check", "solution")


def course_notebooks(folder: Path = NOTEBOOKS) -> list[Path]:
    """The course notebooks (not their solutions), in order."""
    return sorted(folder.glob("[0-9][0-9]_*.ipynb"))


def solutions_path(notebook: Path) -> Path:
    return notebook.parent / "solutions" / f"{notebook.stem}_solutions.ipynb"


def _read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def tagged_cells(path: Path, tag: str) -> dict[str, dict]:
    """exercise id -> the code cell of `path` tagged `tag`. Raises ValueError on a duplicate id."""
    found: dict[str, dict] = {}
    for index, cell in enumerate(_read(path)["cells"]):
        meta = cell.get("metadata", {})
        if tag not in meta.get("tags", []):
            continue
        exercise = meta.get("exercise")
        if cell["cell_type"] != "code" or not exercise:
            raise ValueError(f"{path.name}: cell {index} is tagged {tag!r} "
                             "but is not a code cell with an 'exercise' id")
        if exercise in found:
            raise ValueError(f"{path.name}: two cells tagged {tag!r} for {exercise}")
        found[exercise] = cell
    return found


def source(cell: dict) -> str:
    return "".join(cell["source"])


def exercise_source(notebook: Path, exercise: str, tag: str) -> str:
    """The source of an exercise's cell tagged ``tag``; "solution" cells come from the solutions notebook."""
    path = solutions_path(notebook) if tag == "solution" else notebook
    return source(tagged_cells(path, tag)[exercise])


def run_check(notebook: Path, exercise: str, answer: str, namespace: dict) -> str:
    """Run ``answer``, then the exercise's check cell, in ``namespace``; return what the check printed.

    An ``AssertionError`` from the check (a wrong answer) propagates.
    """
    label = f"<{notebook.stem} {exercise}"
    exec(compile(textwrap.dedent(answer), label + " answer>", "exec"), namespace)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(exercise_source(notebook, exercise, "self-check"), label + " self-check>", "exec"), namespace)
    return printed.getvalue()


def problems(notebook: Path) -> list[str]:
    """What is wrong between a course notebook and its solutions notebook (empty: all in order)."""
    solutions = solutions_path(notebook)
    if not solutions.exists():
        return [f"{notebook.name}: no solutions notebook {solutions.relative_to(notebook.parent)}"]
    try:
        exercises = tagged_cells(notebook, "exercise")
        checks = tagged_cells(notebook, "self-check")
        copies = tagged_cells(solutions, "self-check")
        answers = tagged_cells(solutions, "solution")
    except ValueError as err:
        return [str(err)]
    found = []
    if len(checks) < 2:
        found.append(f"{notebook.name}: {len(checks)} self-check cell(s); every notebook has at least 2 exercises")
    for exercise in sorted(set(exercises) | set(checks) | set(copies) | set(answers)):
        for name, cells in [(f"{notebook.name} 'exercise'", exercises), (f"{notebook.name} 'self-check'", checks),
                            (f"{solutions.name} 'self-check'", copies), (f"{solutions.name} 'solution'", answers)]:
            if exercise not in cells:
                found.append(f"{exercise}: no cell tagged {name}")
        if exercise in checks and exercise in copies and source(checks[exercise]) != source(copies[exercise]):
            found.append(f"{exercise}: the check in {solutions.name} differs from {notebook.name} "
                         "(run: python tools/selfchecks.py sync)")
    return found


def sync(notebook: Path) -> bool:
    """Copy the notebook's check cells into its solutions notebook. True if the file changed."""
    solutions = solutions_path(notebook)
    checks = tagged_cells(notebook, "self-check")
    nb = _read(solutions)
    copied = set()
    for cell in nb["cells"]:
        meta = cell.get("metadata", {})
        if "self-check" in meta.get("tags", []) and meta.get("exercise") in checks:
            cell["source"] = checks[meta["exercise"]]["source"]
            copied.add(meta["exercise"])
    missing = sorted(set(checks) - copied)
    if missing:
        raise ValueError(f"{solutions.name} has no cell tagged 'self-check' for {', '.join(missing)}: "
                         "add one after the solution (tags ['self-check'], exercise id), then sync again")
    text = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
    if text == solutions.read_text(encoding="utf-8"):
        return False
    solutions.write_text(text, encoding="utf-8")
    return True


def main(argv: list[str]) -> int:
    if argv[1:] == ["sync"]:
        for notebook in course_notebooks():
            if sync(notebook):
                print(f"updated {solutions_path(notebook).relative_to(ROOT)}")
        return 0
    if argv[1:] == ["check"]:
        found = [problem for notebook in course_notebooks() for problem in problems(notebook)]
        for problem in found:
            print(problem)
        return 1 if found else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
