"""The notebook is the source: course modules are their notebooks' `#| export` cells, the layers hold.

- every course module is exactly its notebook's export cells (tools/nbexport.py), and a
  module edited by hand, or a notebook edited without regenerating, fails the check;
- the layers: course modules import only earlier course modules (never engine/ or _infra/),
  _infra imports no course module and nothing from engine/, generation does not import
  prompts, the front ends import only the pipeline; every module of the package is in a layer;
- notebooks use only public names, course modules and the front ends (the explorer, the
  command line), never engine/, _infra/ or a private attribute;
- no timing, speed-up or bandwidth figure is written by hand in a notebook's markdown.
"""
from __future__ import annotations

import ast
import json
import re
import shutil
import sys
from pathlib import Path

import pytest

import rag_helpers as rh

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "rag_helpers"
sys.path.insert(0, str(ROOT / "tools"))

import nbexport  # noqa: E402
import notebook_tools  # noqa: E402

COURSE_MODULES = list(nbexport.MODULES.values())  # in notebook order
FRONT_ENDS = {"__main__", "explorer", "evaluate"}
DATA_MODULES = {"knowledge_base", "__init__"}


# ------------------------------------------------------------------ the export


def test_every_course_module_is_its_notebooks_export_cells():
    assert len(nbexport.MODULES) == 12
    problems = nbexport.check()
    assert not problems, "\n\n".join(problems)


def test_every_course_module_says_where_it_comes_from():
    for notebook, module in nbexport.targets():
        first = module.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith(f"# Generated from notebooks/{notebook.name}"), module.name
        assert nbexport.export_cells(notebook), notebook.name


def _copy_tree(tmp_path: Path) -> Path:
    root = tmp_path / "course"
    shutil.copytree(ROOT / "notebooks", root / "notebooks", ignore=shutil.ignore_patterns("solutions", ".*"))
    (root / "rag_helpers").mkdir()
    for _, module in nbexport.targets():
        shutil.copy(module, root / "rag_helpers" / module.name)
    return root


def test_the_check_fails_on_a_module_edited_by_hand(tmp_path):
    root = _copy_tree(tmp_path)
    assert nbexport.check(root) == []
    module = root / "rag_helpers" / "scoring.py"
    module.write_text(module.read_text() + "\n# a quick fix, made in the module only\n")
    problems = nbexport.check(root)
    assert len(problems) == 1 and "scoring.py differs" in problems[0] and "a quick fix" in problems[0]


def test_the_check_fails_on_a_notebook_edited_without_regenerating(tmp_path):
    root = _copy_tree(tmp_path)
    path = root / "notebooks" / "02_normalization.ipynb"
    nb = json.loads(path.read_text())
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).startswith("#| export"))
    cell["source"] = "".join(cell["source"]) + "\nEXTRA = 1\n"
    path.write_text(json.dumps(nb))
    assert any("normalization.py differs" in p for p in nbexport.check(root))
    assert nbexport.write(root) == [root / "rag_helpers" / "normalization.py"]
    assert nbexport.check(root) == []
    assert (root / "rag_helpers" / "normalization.py").read_text().rstrip().endswith("EXTRA = 1")


def test_an_empty_export_cell_is_refused(tmp_path):
    root = _copy_tree(tmp_path)
    path = root / "notebooks" / "03_vectorized_scoring.ipynb"
    nb = json.loads(path.read_text())
    nb["cells"].append({"cell_type": "code", "metadata": {}, "source": "#| export\n", "outputs": [],
                        "execution_count": None})
    path.write_text(json.dumps(nb))
    with pytest.raises(ValueError, match="holds no code"):
        nbexport.check(root)


# ------------------------------------------------------------------ the layers


def _package_imports(path: Path) -> set[str]:
    """The package modules `path` imports, as dotted names below rag_helpers ("engine.scoring", "topk")."""
    here = path.relative_to(PACKAGE).with_suffix("").parts[:-1]  # the subpackage of the file
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(here[: len(here) - (node.level - 1)]) if node.level > 1 else list(here)
                target = ".".join(base + ([node.module] if node.module else []))
                names = [target] if node.module else [".".join(base + [a.name]) for a in node.names]
            elif (node.module or "").startswith("rag_helpers"):
                target = node.module.removeprefix("rag_helpers").lstrip(".")
                names = [target] if target else [a.name for a in node.names]
            else:
                continue
            found.update(n for n in names if n)
        elif isinstance(node, ast.Import):
            found.update(a.name.removeprefix("rag_helpers.") for a in node.names if a.name.startswith("rag_helpers."))
    return found


def _layer(dotted: str) -> str:
    top = dotted.split(".")[0]
    if top in COURSE_MODULES:
        return "course"
    if top in ("engine", "_infra"):
        return top
    if top in FRONT_ENDS:
        return "front end"
    if top in DATA_MODULES:
        return "data"
    return "unknown"


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_module_of_the_package_is_in_a_layer():
    for path in _modules():
        dotted = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        assert _layer(dotted) != "unknown", f"{dotted}: which layer? (tests/test_course_modules.py)"


@pytest.mark.parametrize("module", COURSE_MODULES)
def test_a_course_module_imports_only_earlier_course_modules(module):
    imported = _package_imports(PACKAGE / f"{module}.py")
    for name in imported:
        assert _layer(name) == "course", f"{module}.py imports rag_helpers.{name}"
        assert COURSE_MODULES.index(name.split(".")[0]) < COURSE_MODULES.index(module), (
            f"{module}.py imports {name}, which a later notebook teaches"
        )


def test_infrastructure_imports_no_course_module_and_no_engine():
    for path in (PACKAGE / "_infra").glob("*.py"):
        bad = {n for n in _package_imports(path) if _layer(n) != "_infra"}
        assert not bad, f"_infra/{path.name} imports {bad}"


def test_generation_does_not_import_prompts():
    for path in (PACKAGE / "engine" / "generation.py", PACKAGE / "generation.py"):
        assert not {n for n in _package_imports(path) if n.split(".")[-1] == "prompts"}, path


@pytest.mark.parametrize("front_end", sorted(FRONT_ENDS))
def test_front_ends_only_call_the_pipeline(front_end):
    imported = _package_imports(PACKAGE / f"{front_end}.py")
    assert "engine.pipeline" in imported, front_end
    allowed = {"engine.pipeline", "knowledge_base"}
    if front_end == "evaluate":
        allowed.add("engine.answer_eval")  # runs the pipeline under each condition and scores the answers
    bad = {n for n in imported if n not in allowed and _layer(n) != "_infra"}
    assert not bad, f"{front_end}.py imports steps directly: {bad}"


def test_the_layer_reader_finds_what_it_should(tmp_path):
    # _package_imports on a file shaped like the engine's: relative and absolute forms.
    fake = PACKAGE / "engine" / "_layer_probe_tmp.py"
    fake.write_text("from ..scoring import x\nfrom .._infra.cache import y\nfrom . import topk\n"
                    "from rag_helpers.normalization import z\nimport rag_helpers.embeddings\n")
    try:
        assert _package_imports(fake) == {"scoring", "_infra.cache", "engine.topk", "normalization", "embeddings"}
    finally:
        fake.unlink()


# ------------------------------------------------------------------ notebooks


def _code_cells(path: Path) -> list[str]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    out = []
    for c in cells:
        if c["cell_type"] != "code":
            continue
        # IPython's magics and shell lines are not Python.
        lines = ["" if l.lstrip().startswith(("%", "!")) else l for l in "".join(c["source"]).splitlines()]
        out.append("\n".join(lines))
    return out


def _notebook_problems(path: Path) -> list[str]:
    public = set(rh.__all__)
    problems = []
    for source in _code_cells(path):
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rag_helpers"):
                target = node.module.removeprefix("rag_helpers").lstrip(".")
                if target not in COURSE_MODULES and target not in FRONT_ENDS:
                    problems.append(f"from {node.module} import ...")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("rag_helpers") and alias.name != "rag_helpers":
                        if alias.name.removeprefix("rag_helpers.") not in {*COURSE_MODULES, *FRONT_ENDS}:
                            problems.append(f"import {alias.name}")
            elif isinstance(node, ast.Attribute):
                if node.attr.startswith("_") and not (node.attr.startswith("__") and node.attr.endswith("__")):
                    problems.append(f"private attribute .{node.attr}")
                if isinstance(node.value, ast.Name) and node.value.id == "rh" and node.attr not in public:
                    if node.attr not in {"__version__"}:
                        problems.append(f"rh.{node.attr} is not public")
    return problems


@pytest.mark.parametrize("path", notebook_tools.notebook_paths(), ids=lambda p: p.name)
def test_notebooks_use_only_public_names_and_course_modules(path):
    assert not _notebook_problems(path)


def test_the_notebook_reader_catches_engine_infra_and_private_names(tmp_path):
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source":
                     "import rag_helpers as rh\nfrom rag_helpers.engine import topk\nfrom rag_helpers._infra import x\n"
                     "from rag_helpers.scoring import cosine_scores\nrh.pick_device()\npipe._generator\n%time 1\n"}]}
    path = tmp_path / "probe.ipynb"
    path.write_text(json.dumps(nb))
    assert sorted(_notebook_problems(path)) == sorted([
        "from rag_helpers.engine import ...", "from rag_helpers._infra import ...",
        "rh.pick_device is not public", "private attribute ._generator",
    ])


#: A figure measured on some machine, written into prose: a number with a unit of time or speed,
#: a ratio ("183×", "4x"), or "N times faster". Such sentences must be built from what a cell printed.
HARD_CODED_FIGURE = re.compile(
    r"(?<![\w.$\\{])\d+(?:[.,]\d+)?\s*"
    r"(?:(?:ns|µs|μs|us|ms|s|sec|secs|seconds?|minutes?|min|GB/s|GiB/s|MB/s|MiB/s|tok/s|tokens/s)(?![\w/])"
    r"|[×](?!\s*\d)|x\b(?!\s*\d)"
    r"|\s+times\s+(?:faster|slower|as\s+fast|more|less|the))",
    re.IGNORECASE,
)


def _figures(text: str) -> list[str]:
    text = re.sub(r"\$\$.*?\$\$|\$[^$\n]*\$", " ", text, flags=re.S)  # formulas are not measurements
    return [m.group(0) for m in HARD_CODED_FIGURE.finditer(text)]


@pytest.mark.parametrize("path", notebook_tools.notebook_paths(), ids=lambda p: p.name)
def test_no_timing_or_speed_up_is_written_by_hand_in_markdown(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    markdown = ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
    found = {i: _figures(text) for i, text in enumerate(markdown) if i > 0}  # the header states the run time
    assert not {i: f for i, f in found.items() if f}, (
        f"{path.name}: markdown cells quote measured figures; build those sentences from what a cell printed"
    )


@pytest.mark.parametrize("text, figures", [
    ("takes 381 ms on this machine", ["381 ms"]),
    ("about a third faster: 183× here", ["183×"]),
    ("≈4 GB/s of bandwidth", ["4 GB/s"]),
    ("26 to 36 times faster", ["36 times faster"]),
    ("runs at 5 tok/s", ["5 tok/s"]),
    ("1.5x the floor", ["1.5x"]),
    ("a 384-d vector, k = 5, 1e6 documents, 256 tokens, 2 cores", []),
    ("the formula $O(n \\log n)$ and $2 \\times 3$", []),
    ("notebook 03 and a (10, 384) matrix", []),
])
def test_the_figure_finder(text, figures):
    assert _figures(text) == figures
