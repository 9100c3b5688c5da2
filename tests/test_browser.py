"""The course as a learner meets it: JupyterLab in a real (headless) Chromium.

nbmake proves that the cells run; it cannot see that a title renders as a
code block, that the explorer's widgets never appear, or that its slider does
nothing. Here a real ``jupyter lab`` from this environment serves a copy of the
notebooks, and Chromium, driven by Playwright, opens them as a learner would:

- every notebook's first markdown cell must render as a heading (an ``h1``);
- notebook 07 is run with *Run > Run All Cells*; then a new question is typed
  into the explorer (Enter) and its k slider moved with the arrow keys, and the
  chart, the prompt and the answer on the page must become what
  ``RAGPipeline`` gives for that question and k.

A screenshot of the explorer after the interaction is saved in
``$RAG_TEST_ARTIFACTS`` (or pytest's temporary folder) and its path printed.

It needs Debian's ``chromium`` (``apt-get install chromium``) and the
``playwright`` Python package (no browser download: the system one is used).
Without them the tests are skipped with one line saying so; with
``RAG_BROWSER_TEST=required`` (as ``.ci/run`` sets) they fail instead.
The explorer is found through CSS classes it sets on its widgets
(``rag-explorer``, ``rag-explorer-query``, ...): see ``rag_helpers/explorer.py``.
"""
from __future__ import annotations

import base64
import importlib.util
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import rag_helpers as rh

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))  # the course itself, not the solutions
EXPLORER_NOTEBOOK = "07_full_pipeline.ipynb"
NEW_QUESTION = "Who created the Python programming language?"

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# Bounded waits (seconds). Run All of notebook 07 is the long one: about five
# minutes on a 2-core CPU shared with other jobs, where these limits were set.
SERVER_START_S = 90
PAGE_LOAD_S = 90
RUN_ALL_S = 600
UPDATE_S = 180


def _missing_browser() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "the browser test needs playwright: pip install -e '.[test]' (it drives the system Chromium)"
    if not shutil.which("chromium"):
        return "no Chromium found: install it with `apt-get install chromium` to run the browser test"
    return None


_MISSING = _missing_browser()
if _MISSING:
    if os.environ.get("RAG_BROWSER_TEST") == "required":
        pytest.fail(f"RAG_BROWSER_TEST=required, but {_MISSING}", pytrace=False)
    pytest.skip(_MISSING, allow_module_level=True)

from playwright.sync_api import sync_playwright  # noqa: E402
from PIL import Image  # noqa: E402  (matplotlib's own dependency)


# --------------------------------------------------------------------------- the server

class Lab:
    """A running ``jupyter lab``: its address, token, log and process."""

    def __init__(self, url: str, token: str, process: subprocess.Popen, log: Path, runtime: Path):
        self.url, self.token, self.process, self.log, self.runtime = url, token, process, log, runtime

    def api(self, path: str, method: str = "GET") -> object:
        request = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


def _settings(home: Path) -> dict[str, Path]:
    """Jupyter's config, data, runtime and settings folders, all under ``home`` (a temporary folder)."""
    dirs = {name: home / name for name in ("config", "data", "runtime", "ipython", "workspaces", "notebooks")}
    for folder in dirs.values():
        folder.mkdir(parents=True)
    # The kernel is this environment's Python, whatever a user-wide kernelspec says.
    _write_json(dirs["data"] / "kernels" / "python3" / "kernel.json", {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ipykernel)", "language": "python",
    })
    lab_settings = dirs["config"] / "lab" / "user-settings" / "@jupyterlab"
    # No "notified about official Jupyter news?" toast over the page, no update check.
    _write_json(lab_settings / "apputils-extension" / "notification.jupyterlab-settings",
                {"fetchNews": "false", "checkForUpdates": False})
    # The notebooks are copies, but a test never writes, even there.
    _write_json(lab_settings / "docmanager-extension" / "plugin.jupyterlab-settings", {"autosave": False})
    _write_json(dirs["config"] / "jupyter_server_config.json", {
        "LabApp": {"news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
                   "extension_manager": "readonly"},
    })
    for notebook in NOTEBOOKS:
        shutil.copy(notebook, dirs["notebooks"] / notebook.name)
    return dirs


def _stop(lab: Lab) -> None:
    """Shut the server and its kernels down: politely, then by force."""
    try:
        lab.api("/api/shutdown", method="POST")  # stops every kernel, then the server
        lab.process.wait(timeout=20)
    except Exception:  # noqa: BLE001 (a dead or hung server: the force below handles both)
        pass
    if lab.process.poll() is None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(lab.process.pid, sig)
                lab.process.wait(timeout=10)
                break
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue
    # Kernels run in sessions of their own; ours are the ones whose connection
    # file lies in this test's runtime folder.
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if str(lab.runtime) in cmdline:
            try:
                os.kill(int(proc.name), signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """``jupyter lab`` on 127.0.0.1, a free port and a token, over copies of the notebooks."""
    home = tmp_path_factory.mktemp("jupyter")
    dirs = _settings(home)
    token, port = os.urandom(16).hex(), _free_port()
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(dirs["config"]),
        "JUPYTER_DATA_DIR": str(dirs["data"]),
        # First on the search path: a venv otherwise prefers its own share/jupyter over the data dir.
        "JUPYTER_PATH": str(dirs["data"]),
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
        "JUPYTERLAB_SETTINGS_DIR": str(dirs["config"] / "lab" / "user-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(dirs["workspaces"]),
        "JUPYTER_PLATFORM_DIRS": "1",
        "IPYTHONDIR": str(dirs["ipython"]),
        "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
    }
    command = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser",
        "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={dirs['notebooks']}",
    ]
    if os.geteuid() == 0:
        command.append("--allow-root")  # jupyter refuses to run as root without it
    log = home / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    server = Lab(f"http://127.0.0.1:{port}", token, process, log, dirs["runtime"])
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"jupyter lab exited with code {process.returncode}:\n{server.log_tail()}")
            try:
                server.api("/api/status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"jupyter lab did not answer within {SERVER_START_S} s:\n{server.log_tail()}")
                time.sleep(0.5)
        yield server
    finally:
        _stop(server)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(PAGE_LOAD_S * 1000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture()
def artifacts(tmp_path) -> Path:
    folder = Path(os.environ.get("RAG_TEST_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# The status bar reads "Python 3 (ipykernel) | Idle" once the kernel is started
# and connected; cells run before that are silently dropped.
KERNEL_READY = """() => [...document.querySelectorAll(".jp-StatusBar-TextItem")]
    .some(e => e.textContent.trim().endsWith("| Idle") && !e.textContent.includes("No Kernel"))"""


def open_notebook(page, lab: Lab, name: str) -> None:
    """Open ``name`` in JupyterLab (a fresh workspace) and wait for its kernel to be ready."""
    page.goto(f"{lab.url}/lab/tree/{name}?reset&token={lab.token}")
    page.locator(".jp-NotebookPanel .jp-MarkdownCell .jp-RenderedMarkdown").first.wait_for(state="attached")
    page.wait_for_function(KERNEL_READY)


def test_the_kernel_is_this_environments_python(lab):
    specs = lab.api("/api/kernelspecs")
    assert specs["default"] == "python3"
    assert specs["kernelspecs"]["python3"]["spec"]["argv"][0] == sys.executable


# --------------------------------------------------------------------------- every title

FIRST_MARKDOWN_BLOCK = """() => {
    const md = document.querySelector(".jp-NotebookPanel .jp-MarkdownCell .jp-RenderedMarkdown");
    const first = md && md.firstElementChild;
    if (!first) return null;
    // JupyterLab appends a "¶" anchor link to every heading.
    const text = [...first.childNodes].filter(n => !(n.classList && n.classList.contains("jp-InternalAnchorLink")))
        .map(n => n.textContent).join("").trim();
    return {tag: first.tagName.toLowerCase(), text: text};
}"""


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", [p.name for p in NOTEBOOKS])
def test_first_markdown_cell_renders_as_a_title(lab, page, name):
    open_notebook(page, lab, name)
    page.wait_for_function(f"({FIRST_MARKDOWN_BLOCK})() !== null")
    block = page.evaluate(FIRST_MARKDOWN_BLOCK)
    assert block["tag"] == "h1", f"{name}: the first markdown cell renders as <{block['tag']}>: {block['text'][:80]!r}"
    assert block["text"], f"{name}: the title is empty"
    for session in lab.api("/api/sessions"):  # each notebook opened starts a kernel: stop it
        lab.api(f"/api/sessions/{session['id']}", method="DELETE")


# --------------------------------------------------------------------------- the explorer

CELL_PROMPTS = """() => [...document.querySelectorAll(
    ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt")].map(e => e.textContent.trim())"""

# What the explorer shows. textContent, not innerText: JupyterLab skips the
# rendering of cells out of view, and innerText of those is empty.
EXPLORER_STATE = """async () => {
    const root = document.querySelector(".rag-explorer");
    if (!root) return null;
    const text = cls => { const e = root.querySelector("." + cls); return e ? e.textContent : null; };
    const img = root.querySelector("img.rag-explorer-chart");
    let chart = null;
    if (img && img.style.display !== "none" && img.getAttribute("src")) {
        try {  // the widget holds the PNG in a blob: URL; a newer chart may have revoked it
            const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
            let s = ""; for (const b of bytes) s += String.fromCharCode(b);
            chart = btoa(s);
        } catch (e) { chart = null; }
    }
    const input = root.querySelector(".rag-explorer-query input");
    const handle = root.querySelector(".rag-explorer-k [role=slider]");
    return {
        question: input ? input.value : null,
        k: handle ? Number(handle.getAttribute("aria-valuenow")) : null,
        status: text("rag-explorer-status"), prompt: text("rag-explorer-prompt"),
        answer: text("rag-explorer-answer"), chart: chart,
    };
}"""


def run_all_cells(page) -> None:
    """Run > Run All Cells, then wait until every code cell has run (or one failed)."""
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    deadline = time.monotonic() + RUN_ALL_S
    while True:
        prompts = page.evaluate(CELL_PROMPTS)
        idle = page.evaluate(KERNEL_READY)
        started = any(p not in ("", "[ ]:") for p in prompts)
        if started and idle and "[*]:" not in prompts:
            break
        if time.monotonic() > deadline:
            pytest.fail(f"Run All did not finish within {RUN_ALL_S} s; the cell prompts: {prompts}")
        time.sleep(1)
    not_run = [i for i, p in enumerate(prompts) if not (p.startswith("[") and p[1:-2].isdigit())]
    if not_run:
        errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
        last = errors.last.text_content()[-2000:] if errors.count() else "(no error output found)"
        pytest.fail(f"Run All stopped: code cells {not_run} did not run; the last error output:\n{last}")


def explorer_state(page) -> dict | None:
    return page.evaluate(EXPLORER_STATE)


def bar_lengths(png: bytes) -> list[int]:
    """The lengths in pixels of the horizontal bars in a chart, top to bottom.

    A bar is a band of rows holding coloured pixels (text, axes and background
    are grey); its length is the band's median count of coloured pixels.
    """
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)  # (height, width, 3)
    coloured = (rgb.max(axis=2) - rgb.min(axis=2)) > 60  # (height, width) bool
    per_row = coloured.sum(axis=1)
    bars, start = [], None
    for y, count in enumerate([*per_row.tolist(), 0]):
        if count > 2 and start is None:
            start = y
        elif count <= 2 and start is not None:
            if y - start >= 3:  # a band a few pixels high, not an antialiasing seam
                bars.append(int(np.median(per_row[start:y])))
            start = None
    return bars


def check_shows(state: dict, expected: rh.RAGResult, k: int) -> None:
    """The explorer's state is what RAGPipeline gives: the prompt, one bar per hit, scaled as the scores."""
    assert state["prompt"].strip() == expected.prompt.strip(), "the prompt on the page is not RAGPipeline's"
    lengths = bar_lengths(base64.b64decode(state["chart"]))
    assert len(lengths) == k, f"the chart has {len(lengths)} bars for k={k}"
    scores = np.abs([score for score, _ in expected.hits])
    # One x scale for all bars: lengths proportional to the scores, to within the
    # pixel or two of antialiasing at the bars' ends.
    np.testing.assert_allclose(np.array(lengths), scores / scores[0] * lengths[0], rtol=0, atol=2.5,
                               err_msg="the bars' lengths are not in proportion to RAGPipeline's scores")
    assert state["answer"].strip(), "the answer is empty"


def wait_until_shown(page, expected: rh.RAGResult, what: str) -> dict:
    """Wait for the explorer to finish an update that shows ``expected``'s prompt, and return its state."""
    deadline = time.monotonic() + UPDATE_S
    state = None
    while time.monotonic() < deadline:
        state = explorer_state(page)
        if (state and state["prompt"] is not None and state["prompt"].strip() == expected.prompt.strip()
                and "Working" not in (state["status"] or "") and state["chart"] and (state["answer"] or "").strip()):
            return state
        time.sleep(0.5)
    shown = {key: value for key, value in (state or {}).items() if key != "chart"}
    pytest.fail(f"after {what}, the explorer did not show RAGPipeline's result within {UPDATE_S} s; "
                f"expected the prompt {expected.prompt!r}, the page showed {shown}")


@pytest.mark.timeout(1200)
def test_the_explorer_follows_the_question_and_the_k_slider(lab, page, encoder, artifacts, capsys):
    pipe = rh.RAGPipeline(rh.SAMPLE_DOCUMENTS, k=1, encoder=encoder)  # retrieval only: the expected hits

    def expected(question: str, k: int) -> rh.RAGResult:
        return pipe.answer(question, k, generate=False)

    open_notebook(page, lab, EXPLORER_NOTEBOOK)
    shot = artifacts / "explorer-failure.png"  # until the interaction has passed
    try:
        run_all_cells(page)
        explorer = page.locator(".rag-explorer")
        try:
            explorer.wait_for(timeout=UPDATE_S * 1000)
        except Exception:  # noqa: BLE001 (Playwright's TimeoutError, made readable)
            pytest.fail("the explorer (an element with CSS class rag-explorer) never appeared after Run All")
        explorer.scroll_into_view_if_needed()

        # What the notebook left on show: whatever question and k its last cells set.
        before = explorer_state(page)
        question, k = before["question"], before["k"]
        before = wait_until_shown(page, expected(question, k), "Run All")
        check_shows(before, expected(question, k), k)

        # A learner types a new question and presses Enter ...
        query = explorer.locator(".rag-explorer-query input")
        query.fill(NEW_QUESTION)
        query.press("Enter")
        asked = wait_until_shown(page, expected(NEW_QUESTION, k), "typing a question and pressing Enter")
        check_shows(asked, expected(NEW_QUESTION, k), k)
        assert asked["answer"] != before["answer"], "the answer did not change with the question"

        # ... then moves the k slider one step with the keyboard.
        step, new_k = ("ArrowRight", k + 1) if k < len(rh.SAMPLE_DOCUMENTS) else ("ArrowLeft", k - 1)
        handle = explorer.locator(".rag-explorer-k [role=slider]")
        handle.focus()
        handle.press(step)
        moved = wait_until_shown(page, expected(NEW_QUESTION, new_k), f"moving the k slider to {new_k}")
        check_shows(moved, expected(NEW_QUESTION, new_k), new_k)
        assert moved["chart"] != asked["chart"], "the chart did not change with k"

        shot = artifacts / "explorer.png"
        explorer.screenshot(path=str(shot))
    except BaseException:
        page.screenshot(path=str(shot), full_page=True)  # the whole page, to see what went wrong
        raise
    finally:
        with capsys.disabled():
            print(f"\nbrowser test screenshot: {shot}")
