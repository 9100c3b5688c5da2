"""The notebook is the source: write each notebook's ``#| export`` cells into its module.

    python tools/nbexport.py write   # regenerate every course module from its notebook
    python tools/nbexport.py check   # exit 1 if a module differs from its cells (tests run this)

A code cell whose first line is ``#| export`` belongs to the course code (as
d2l's ``#@save`` and nbdev's ``#| export``): its remaining lines are written
verbatim, in notebook order, into the module named for the notebook
(``MODULES`` below), under a header that says where they come from. Nothing
else goes into a course module, so a learner who opens it reads exactly what
the cells built. Argument checks and fast paths live in ``rag_helpers/engine``.

Export cells must run both in the notebook and as module code, so they import
with absolute names (``from rag_helpers.normalization import l2_normalize``).
"""
from __future__ import annotations

import difflib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIRECTIVE = "#| export"

#: notebook file (in notebooks/) -> course module (in rag_helpers/)
MODULES = {
    "01_embeddings.ipynb": "embeddings",
    "02_normalization.ipynb": "normalization",
    "03_vectorized_scoring.ipynb": "scoring",
    "04_top_k.ipynb": "topk",
    "05_prompts.ipynb": "prompts",
    "06_generation.ipynb": "generation",
    "07_full_pipeline.ipynb": "pipeline",
    "08_your_own_documents.ipynb": "documents",
    "09_evaluation.ipynb": "evaluation",
    "10_scaling.ipynb": "scaling",
    "11_is_the_answer_right.ipynb": "answers",
    "12_changing_documents.ipynb": "incremental",
}


def export_cells(notebook: Path) -> list[str]:
    """The sources of the notebook's ``#| export`` cells, directive line removed, in order."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    found = []
    for number, cell in enumerate(cells, start=1):
        source = "".join(cell["source"])
        first, _, rest = source.partition("\n")
        if cell["cell_type"] == "code" and first.strip() == DIRECTIVE:
            if not rest.strip():
                raise ValueError(f"{notebook.name}: cell {number} is marked {DIRECTIVE} but holds no code")
            found.append(rest.rstrip() + "\n")
    return found


def module_text(notebook: Path) -> str:
    """What the notebook's module must hold, byte for byte."""
    cells = export_cells(notebook)
    if not cells:
        raise ValueError(f"{notebook.name} has no {DIRECTIVE} cells")
    rel = notebook.relative_to(notebook.parent.parent).as_posix()
    header = (
        f"# Generated from {rel} by tools/nbexport.py: edit the notebook, not this file.\n"
        f"# Each block below is one `{DIRECTIVE}` cell of the notebook, verbatim, in order.\n\n"
    )
    return header + "\n\n".join(cells)


def targets(root: Path = ROOT) -> list[tuple[Path, Path]]:
    """(notebook, module) for every course notebook."""
    return [(root / "notebooks" / nb, root / "rag_helpers" / f"{module}.py") for nb, module in MODULES.items()]


def check(root: Path = ROOT) -> list[str]:
    """One message per module that differs from its notebook's cells (empty when all agree)."""
    problems = []
    for notebook, module in targets(root):
        want = module_text(notebook)
        if not module.exists():
            problems.append(f"{module.relative_to(root)} is missing: run python tools/nbexport.py write")
            continue
        have = module.read_text(encoding="utf-8")
        if have != want:
            diff = difflib.unified_diff(
                want.splitlines(), have.splitlines(), f"cells of {notebook.name}", str(module.relative_to(root)),
                lineterm="", n=1,
            )
            problems.append(
                f"{module.relative_to(root)} differs from the {DIRECTIVE} cells of {notebook.name} "
                "(edit the notebook, then run python tools/nbexport.py write):\n" + "\n".join(list(diff)[:40])
            )
    return problems


def write(root: Path = ROOT) -> list[Path]:
    """Regenerate every module; returns the ones that changed."""
    changed = []
    for notebook, module in targets(root):
        text = module_text(notebook)
        if not module.exists() or module.read_text(encoding="utf-8") != text:
            module.write_text(text, encoding="utf-8")
            changed.append(module)
    return changed


def main(argv: list[str]) -> int:
    if argv[1:] == ["write"]:
        for path in write():
            print(f"wrote {path.relative_to(ROOT)}")
        return 0
    if argv[1:] == ["check"]:
        problems = check()
        for problem in problems:
            print(problem)
        return 1 if problems else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
