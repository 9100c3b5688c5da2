"""The ipywidgets explorer, driven from code with the real packaged encoder and generator."""
from __future__ import annotations

import subprocess
import sys

import pytest

import rag_helpers as rh
from conftest import JUPITER, VENUS

pytest.importorskip("ipywidgets")
from rag_helpers.explorer import make_explorer  # noqa: E402



@pytest.fixture(scope="module")
def pipe(encoder, generator):
    """The planet pipeline with the session's models; short answers keep the CPU runs quick."""
    return rh.RAGPipeline(rh.SAMPLE_DOCUMENTS, k=2, encoder=encoder, generator=generator, max_new_tokens=24)


@pytest.fixture(scope="module")
def answered(pipe):
    """One full run (retrieval and generation) of the sample question, shared by the tests below."""
    explorer = make_explorer(pipe)
    explorer.run(rh.SAMPLE_QUESTION, k=2)
    return explorer


def bar_count(explorer) -> int:
    """Bars in the chart the explorer shows, checking that the widget holds its picture."""
    assert bytes(explorer.chart.value).startswith(b"\x89PNG"), "the chart widget holds no PNG image"
    return len(explorer.figure.axes[0].patches)


def test_it_shows_jupiter_first_then_venus(answered):
    assert answered.error is None
    assert [doc for _, doc in answered.hits] == [JUPITER, VENUS]
    assert answered.hits[0][0] == pytest.approx(0.7672, abs=5e-5)
    assert answered.hits[1][0] == pytest.approx(0.5384, abs=5e-5)
    assert bar_count(answered) == 2


def test_it_shows_the_exact_prompt(answered):
    assert answered.prompt == rh.build_prompt(rh.SAMPLE_QUESTION, [JUPITER, VENUS])
    assert "CONTEXT:\nJupiter is the largest planet" in answered.prompt_view.value


def test_it_shows_an_answer_naming_jupiter(answered):
    assert "Jupiter" in answered.answer
    assert "Jupiter" in answered.answer_view.value


def test_moving_the_slider_updates_the_chart_and_prompt(pipe):
    explorer = make_explorer(pipe, generate=False)
    explorer.run(rh.SAMPLE_QUESTION, k=2)
    assert bar_count(explorer) == 2
    explorer.k.value = 4  # what a user's drag does: the observer runs update()
    assert len(explorer.hits) == 4
    assert bar_count(explorer) == 4
    assert all(doc in explorer.prompt for _, doc in explorer.hits)
    assert explorer.answer is None and "generation is off" in explorer.answer_view.value


def test_slider_spans_one_to_the_number_of_documents(pipe):
    explorer = make_explorer(pipe, generate=False)
    assert (explorer.k.min, explorer.k.max, explorer.k.value) == (1, len(rh.SAMPLE_DOCUMENTS), 2)


def test_typing_a_question_updates_it(pipe):
    explorer = make_explorer(pipe, generate=False)
    explorer.query.value = "What is the capital of France?"  # the observer runs update()
    assert explorer.hits[0][1] == "The Eiffel Tower is in Paris, the capital of France."


@pytest.mark.parametrize("query", ["", "   "])
def test_an_empty_question_shows_a_message_instead_of_raising(pipe, query):
    explorer = make_explorer(pipe, generate=False)
    explorer.run(rh.SAMPLE_QUESTION, k=2)
    explorer.query.value = query
    assert explorer.error is not None and "empty" in explorer.error
    assert "empty" in explorer.status.value
    assert explorer.hits == [] and explorer.prompt is None and explorer.figure is None
    assert bytes(explorer.chart.value) == b""


def test_a_prompt_too_long_for_the_model_shows_a_message(encoder, generator):
    # A document longer than the whole context window: even k=1 cannot fit.
    huge = " ".join([JUPITER] * (generator.context_window // 4))
    with pytest.warns(rh.LongDocumentWarning):  # the encoder, too, reads only its beginning
        pipe = rh.RAGPipeline([huge, VENUS], k=1, encoder=encoder, generator=generator, max_new_tokens=8)
    explorer = make_explorer(pipe)
    explorer.update()
    assert explorer.error is not None and "context window" in explorer.error
    assert explorer.answer is None
    assert len(explorer.hits) == 1  # retrieval still shows what was found


def test_importing_rag_helpers_does_not_import_ipywidgets():
    code = "import sys, rag_helpers; assert 'ipywidgets' not in sys.modules, 'rag_helpers imported ipywidgets'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_explorer_is_a_front_end_of_the_pipeline_only():
    import ast
    from pathlib import Path

    import rag_helpers.explorer as explorer

    tree = ast.parse(Path(explorer.__file__).read_text(encoding="utf-8"))
    relative = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level}
    assert {m for m in relative if not m.startswith("_infra.")} == {"engine.pipeline", "knowledge_base"}
