"""An interactive explorer for a ``RAGPipeline``: a question box, a k slider,
a bar chart of the retrieved scores, the prompt, and the answer.

    from rag_helpers.explorer import make_explorer
    explorer = make_explorer(pipe)
    explorer.widget                                      # show it (last line of a cell)
    explorer.run("which planet is the biggest?", k=2)    # or drive it from code
    explorer.hits, explorer.prompt, explorer.answer      # what it shows now

ipywidgets and matplotlib are imported here only: ``import rag_helpers`` does
not need them (they come with the ``notebooks`` extra).
"""
from __future__ import annotations

import html
import io
import textwrap
import warnings

import ipywidgets as widgets
from matplotlib.figure import Figure

from .knowledge_base import SAMPLE_QUESTION
from ._infra.models import ModelLoadError
from .engine.pipeline import ContextOverflowError, RAGPipeline

__all__ = ["RAGExplorer", "make_explorer", "scores_figure", "figure_png"]

# Bar labels longer than this are shortened, so that the chart keeps its shape.
_LABEL_CHARS = 60


class RAGExplorer:
    """The widgets around one pipeline, and what they show now.

    Widgets (public, so that code can set them as a user would):
    ``query`` (Text), ``k`` (IntSlider, 1..n_docs), ``ask`` (Button),
    ``status`` (HTML: notes and errors), ``chart`` (Image: the score bars, PNG),
    ``prompt_view`` and ``answer_view`` (HTML). ``widget`` lays them out.

    Pressing Enter in the question box, releasing the slider or clicking
    *Ask* runs ``update()``. What is on show is kept in attributes:
    ``hits`` (k pairs ``(score, document)``, best first), ``prompt``,
    ``answer`` (None with ``generate=False``), ``figure`` (the bar chart) and
    ``error`` (the message shown instead, or None).
    """

    def __init__(
        self,
        pipe: RAGPipeline,
        *,
        generate: bool = True,
        query: str = SAMPLE_QUESTION,
        max_new_tokens: int | None = None,
    ) -> None:
        self.pipe = pipe
        self.generate = generate
        self.max_new_tokens = max_new_tokens  # None: the pipeline's own

        # continuous_update=False: act on Enter or on releasing the slider,
        # not on every keystroke or step of a drag (an update may generate).
        self.query = widgets.Text(
            value=query, description="Question", continuous_update=False,
            layout=widgets.Layout(width="55%"),
        )
        self.k = widgets.IntSlider(
            value=pipe.k, min=1, max=len(pipe.documents), description="k", continuous_update=False
        )
        self.ask = widgets.Button(description="Ask", button_style="primary")
        self.status = widgets.HTML()
        # An image rather than an Output area showing the figure: a PNG looks the
        # same whatever matplotlib backend the notebook has (or has not yet) set up.
        self.chart = widgets.Image(format="png", layout=widgets.Layout(display="none"))
        self.prompt_view = widgets.HTML()
        self.answer_view = widgets.HTML()
        self.widget = widgets.VBox([
            widgets.HBox([self.query, self.k, self.ask]),
            self.status,
            self.chart,
            widgets.HTML("<b>Prompt sent to the model</b>"),
            self.prompt_view,
            widgets.HTML("<b>Answer</b>"),
            self.answer_view,
        ])
        # Stable hooks for the browser test (tests/test_browser.py): CSS classes on the rendered widgets.
        for widget, hook in [
            (self.widget, "rag-explorer"), (self.query, "rag-explorer-query"), (self.k, "rag-explorer-k"),
            (self.ask, "rag-explorer-ask"), (self.status, "rag-explorer-status"), (self.chart, "rag-explorer-chart"),
            (self.prompt_view, "rag-explorer-prompt"), (self.answer_view, "rag-explorer-answer"),
        ]:
            widget.add_class(hook)

        self.hits: list[tuple[float, str]] = []
        self.prompt: str | None = None
        self.answer: str | None = None
        self.figure: Figure | None = None
        self.error: str | None = None
        self._pieces: list[str] = []  # the answer so far, while it streams in
        self._quiet = False  # True while run() sets both widgets, so that update() runs once

        self.ask.on_click(lambda _button: self.update())
        self.query.observe(self._on_change, names="value")
        self.k.observe(self._on_change, names="value")

    def run(self, query: str, k: int | None = None) -> None:
        """Type ``query`` and move the slider to ``k``, as a user would, then update once.

        The slider keeps k within 1..n_docs (a larger k becomes n_docs).
        """
        self._quiet = True
        try:
            self.query.value = query
            if k is not None:
                self.k.value = k
        finally:
            self._quiet = False
        self.update()

    def update(self) -> None:
        """Retrieve (and generate) for the question and k on show, and show the results.

        Never raises for bad input or a model that cannot answer: the message
        is shown in ``status`` and kept in ``error``.
        """
        self.hits, self.prompt, self.answer, self.figure, self.error = [], None, None, None, None
        self._pieces = []
        self.prompt_view.value = self.answer_view.value = ""
        self._show_chart(b"")
        if not self.query.value.strip():
            self._fail("Type a question in the box first: it is empty.")
            return
        self._show_status("Working…")
        try:
            # Retrieval first, shown at once: generation can take seconds on a CPU.
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                prepared = self.pipe.prepare(
                    self.query.value, self.k.value, fit=self.generate, max_new_tokens=self.max_new_tokens
                )
            self._show_retrieved(prepared.hits, prepared.prompt)
            if not self.generate:
                self.answer_view.value = "<i>generation is off (generate=False)</i>"
                self._show_status("")
                return
            result = self.pipe.generate(prepared, max_new_tokens=self.max_new_tokens, stream=self._show_piece)
        except (ValueError, TypeError, ModelLoadError) as exc:
            if isinstance(exc, ContextOverflowError):  # retrieval worked: show what it found
                self._show_retrieved(exc.hits, None)
            self._fail(str(exc))
            return
        # The prompt may have lost documents to fit the context window (a warning says so).
        self.answer = result.answer
        self.answer_view.value = _pre(result.answer)
        self._show_status(" ".join(str(w.message) for w in caught))

    def _on_change(self, _change: dict) -> None:
        if not self._quiet:
            self.update()

    def _fail(self, message: str) -> None:
        self.error = message
        self._show_status(f"⚠ {message}", error=True)

    def _show_status(self, text: str, *, error: bool = False) -> None:
        color = "#b00020" if error else "#555"
        self.status.value = f'<span style="color:{color}">{html.escape(text)}</span>' if text else ""

    def _show_retrieved(self, hits: list[tuple[float, str]], prompt: str | None) -> None:
        self.hits, self.prompt = hits, prompt
        self.prompt_view.value = _pre(prompt) if prompt is not None else ""
        self.figure = scores_figure(hits)
        self._show_chart(figure_png(self.figure))

    def _show_chart(self, png: bytes) -> None:
        self.chart.value = png
        self.chart.layout.display = None if png else "none"  # no empty image frame

    def _show_piece(self, piece: str) -> None:
        # The streamer calls this with each new piece of the answer as it is written.
        self._pieces.append(piece)
        self.answer_view.value = _pre("".join(self._pieces))


def scores_figure(hits: list[tuple[float, str]]) -> Figure:
    """A horizontal bar chart of ``hits`` (k pairs ``(score, document)``), best at the top."""
    scores = [score for score, _ in hits]
    labels = [_literal(textwrap.shorten(doc, _LABEL_CHARS, placeholder="…")) for _, doc in hits]
    # A bare Figure, not pyplot: pyplot would keep every chart open in its
    # list of figures however many times the slider moves.
    fig = Figure(figsize=(8, 0.45 * len(hits) + 1.2))
    ax = fig.subplots()
    bars = ax.barh(range(len(hits)), scores, color="tab:blue")
    ax.bar_label(bars, fmt="%.4f", padding=3)
    ax.set_yticks(range(len(hits)), labels)
    ax.invert_yaxis()  # best first, at the top
    ax.set_xlim(min(0.0, *scores), 1.1)  # cosine similarity is at most 1; room for the labels
    ax.set_xlabel("cosine similarity to the question")
    ax.set_title(f"Top {len(hits)} retrieved documents")
    fig.tight_layout()
    return fig


def _literal(text: str) -> str:
    """``text`` as matplotlib should draw it, character for character.

    matplotlib reads text between two "$" as TeX math: "$5 and $10" would
    lose its dollars and italicise what is between them, and "$\\frac{a}{$"
    raises a parse error. An escaped "\\$" is drawn as "$" and starts no math.
    """
    return text.replace("$", r"\$")


def figure_png(fig: Figure) -> bytes:
    """``fig`` rendered as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=96)
    return buffer.getvalue()


def make_explorer(
    pipe: RAGPipeline,
    *,
    generate: bool = True,
    query: str = SAMPLE_QUESTION,
    max_new_tokens: int | None = None,
) -> RAGExplorer:
    """Build the explorer for ``pipe``; show it with ``explorer.widget``.

    ``generate=False`` stops at the prompt (fast: the language model is never loaded).
    ``max_new_tokens`` defaults to the pipeline's own.
    """
    return RAGExplorer(pipe, generate=generate, query=query, max_new_tokens=max_new_tokens)


def _pre(text: str) -> str:
    return f'<pre style="white-space: pre-wrap">{html.escape(text)}</pre>'
