"""Is the answer right? Generate answers under several conditions and score them (notebook 11, issue 17).

    questions = read_questions("questions.jsonl")                  # question, gold answer or null, sources
    pipe = RAGPipeline.from_files(["docs/"], min_score="auto")
    report = evaluate_answers(pipe, questions, ["closed-book", "rag", "extractive"])
    print(report.table())

The conditions (``CONDITIONS``):

* ``closed-book``: the model alone, asked the bare question: what it knows without documents;
* ``rag``: the pipeline's answer (retrieve, prompt, generate), "I don't know" below ``pipe.min_score``;
* ``rag-cite`` / ``rag-idk``: the same with the "cite" or "idk" prompt style;
* ``extractive``: no generator at all: the retrieved chunks' sentences closest to the question;
* ``oracle``: the documents given by the caller (the gold chunks: what perfect retrieval would give).

Each answer is scored where a gold answer exists (exact match, token F1, token recall, ROUGE-L recall:
``rag_helpers.answers``), against its context where it had one (token precision against the context,
groundedness: the share of its sentences that some context sentence supports), for its citations in the
cite style, and for abstention: an answerable question refused, an unanswerable one (gold ``None``)
answered. A conditions's answers are generated in batches (``Generator.generate_batch`` where the
generator has it), so ``seconds_per_answer`` is the batch's time shared out.
"""
from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import PurePath

import numpy as np

from .. import answers as taught
from .pipeline import ABSTAIN_ANSWER, EXTRACTIVE_SENTENCES, RAGPipeline
from .answer_metrics import extractive_answers, sentence_supports
from .prompts import build_prompt

__all__ = [
    "CONDITIONS",
    "EvalQuestion",
    "QuestionFileError",
    "AnswerReport",
    "read_questions",
    "says_idk",
    "evaluate_answers",
    "score_answer",
    "grounded_in_one_call",
]

CONDITIONS = ("closed-book", "rag", "rag-cite", "rag-idk", "extractive", "oracle")
# "I don't know", "I do not know", with a straight or a curly apostrophe.
_IDK = re.compile(r"\bi (?:don['’]?t|do not) know\b", re.IGNORECASE)


def says_idk(answer: str) -> bool:
    """True when the answer says "I don't know" (or "I do not know")."""
    return bool(_IDK.search(answer))


class QuestionFileError(ValueError):
    """A question file line that is not what ``read_questions`` expects; the message names file and line."""


@dataclass(frozen=True)
class EvalQuestion:
    """One question to evaluate: its gold answer (None: the documents cannot answer it) and source files."""

    question: str
    answer: str | None = None
    sources: tuple[str, ...] | None = None
    has_answer: bool = False  # True when the file gave an "answer" field (a text or null)


def read_questions(path: str | os.PathLike) -> list[EvalQuestion]:
    """The questions of a JSON-lines file: one object per line with ``question`` (required),
    ``answer`` (gold text, or null for a question the documents cannot answer) and ``sources``
    (file names that hold the answer). Blank lines are skipped; anything else that is wrong is a
    ``QuestionFileError`` naming the file and the line.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except UnicodeDecodeError as exc:
        raise QuestionFileError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise QuestionFileError(f"{path}: cannot be read ({exc.strerror})") from None
    questions = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise QuestionFileError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(record, dict):
            raise QuestionFileError(f"{where}: expected a JSON object like "
                                    '{"question": "...", "answer": "..."}, got ' + type(record).__name__)
        unknown = set(record) - {"question", "answer", "sources"}
        if unknown:
            raise QuestionFileError(f"{where}: unknown field(s) {sorted(unknown)}; "
                                    "the fields are question, answer, sources")
        question = record.get("question")
        if not isinstance(question, str) or not question.strip():
            raise QuestionFileError(f"{where}: \"question\" must be a non-empty string, got {question!r}")
        answer = record.get("answer")
        if answer is not None and (not isinstance(answer, str) or not answer.strip()):
            raise QuestionFileError(f"{where}: \"answer\" must be a non-empty string or null, got {answer!r}")
        sources = record.get("sources")
        if sources is not None:
            if isinstance(sources, str):
                sources = [sources]
            if not isinstance(sources, list) or not sources or not all(isinstance(s, str) and s for s in sources):
                raise QuestionFileError(f"{where}: \"sources\" must be a file name or a list of file names, "
                                        f"got {record.get('sources')!r}")
            sources = tuple(sources)
        questions.append(EvalQuestion(question.strip(), answer, sources, "answer" in record))
    if not questions:
        raise QuestionFileError(f"{path}: no questions (one JSON object per line expected)")
    return questions


@dataclass
class AnswerReport:
    """Per-question records for each condition, and their means.

    ``records[condition]``: one dict per question with at least ``question``, ``generated``,
    ``abstained``, and where they apply ``f1``, ``exact``, ``recall``, ``rouge_l_recall``,
    ``context_precision``, ``grounded``, ``citations_valid``, ``citations_supported``, ``hit``.
    """

    records: dict[str, list[dict]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    k: int = 0
    min_score: float | None = None

    COLUMNS = ("f1", "exact", "recall", "rouge_l_recall", "grounded", "context_precision",
               "citations_valid", "citations_supported", "hit", "answerable_refused", "unanswerable_answered",
               "seconds_per_answer")

    def means(self) -> dict[str, dict[str, float | int | None]]:
        """condition -> metric -> mean over the questions it applies to (None where none does)."""
        out = {}
        for name, rows in self.records.items():
            summary: dict[str, float | int | None] = {"questions": len(rows)}
            for key in ("f1", "exact", "recall", "rouge_l_recall", "hit"):
                summary[key] = _mean(r.get(key) for r in rows)
            answered = [r for r in rows if not r["abstained"]]
            for key in ("grounded", "context_precision", "citations_valid", "citations_supported"):
                summary[key] = _mean(r.get(key) for r in answered)
            answerable = [r for r in rows if r.get("answerable") is True]
            unanswerable = [r for r in rows if r.get("answerable") is False]
            summary["answerable_refused"] = _mean(float(r["abstained"]) for r in answerable)
            summary["unanswerable_answered"] = _mean(float(not r["abstained"]) for r in unanswerable)
            summary["seconds_per_answer"] = self.seconds.get(name, 0.0) / max(len(rows), 1)
            out[name] = summary
        return out

    def table(self, digits: int = 3) -> str:
        """A Markdown table: a row per condition, a column per metric that applies to any."""
        means = self.means()
        columns = [c for c in self.COLUMNS if any(m.get(c) is not None for m in means.values())]
        lines = ["| condition | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
        for name, m in means.items():
            cells = ["–" if m.get(c) is None else f"{m[c]:.{digits}f}" for c in columns]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def to_json(self) -> dict:
        """``{"k", "min_score", "conditions": {name: {"means": {...}, "records": [...]}}}``."""
        means = self.means()
        return {"k": self.k, "min_score": self.min_score,
                "conditions": {name: {"means": means[name], "records": rows}
                               for name, rows in self.records.items()}}


def _mean(values) -> float | None:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(np.mean(values)) if values else None


def evaluate_answers(
    pipe: RAGPipeline,
    questions: Sequence[EvalQuestion],
    conditions: Sequence[str] = ("closed-book", "rag", "extractive"),
    *,
    oracle_documents: Sequence[Sequence[str]] | None = None,
    retrieve: Callable[[str], list] | None = None,
    max_new_tokens: int = 64,
    batch_size: int = 8,
    stop_repeats: bool = True,
    progress: bool = False,
    extractive_sentences: int = EXTRACTIVE_SENTENCES,
) -> AnswerReport:
    """Answer every question under every condition and score the answers.

    ``retrieve(question) -> list[Hit]`` replaces the pipeline's dense retrieval (a hybrid
    retriever, say); ``oracle_documents[i]`` are question i's gold documents (needed for
    "oracle"). ``progress=True`` shows a bar per condition with the time left.
    """
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown:
        raise ValueError(f"unknown condition(s) {unknown}: choose from {CONDITIONS}")
    if "oracle" in conditions and (oracle_documents is None or len(oracle_documents) != len(questions)):
        raise ValueError("the oracle condition needs oracle_documents: one list of documents per question")
    report = AnswerReport(k=pipe.k, min_score=pipe.min_score)
    hits = [(retrieve or pipe.retrieve)(q.question) for q in questions]
    for condition in conditions:
        start = time.perf_counter()
        contexts: list[list[str] | None] = []
        prompts: list[str | None] = []
        for i, (q, found) in enumerate(zip(questions, hits)):
            refused = pipe.min_score is not None and found[0].score < pipe.min_score
            if condition == "closed-book":
                contexts.append(None)
                prompts.append(q.question)
            elif condition == "oracle":
                contexts.append(list(oracle_documents[i]))
                prompts.append(build_prompt(q.question, contexts[-1]))
            elif refused:
                contexts.append([])
                prompts.append(None)
            elif condition == "extractive":
                contexts.append([h.document for h in found])
                prompts.append(None)
            else:
                style = {"rag": "plain", "rag-cite": "cite", "rag-idk": "idk"}[condition]
                contexts.append([h.document for h in found])
                prompts.append(build_prompt(q.question, contexts[-1], style))
        texts = _generate(pipe, [p for p in prompts if p is not None], max_new_tokens, batch_size,
                          stop_repeats, progress, condition)
        generated = iter(texts)
        # The extractive answers in one embedding call: the taught function's answers (tested equal).
        extract = [i for i, (context, prompt) in enumerate(zip(contexts, prompts))
                   if condition == "extractive" and prompt is None and context]
        extracted = dict(zip(extract, extractive_answers(
            [questions[i].question for i in extract], [contexts[i] for i in extract], pipe.encoder,
            extractive_sentences) if extract else []))
        answers = []
        for i, prompt in enumerate(prompts):
            if prompt is not None:
                answers.append(next(generated))
            elif i in extracted:
                answers.append(extracted[i])
            else:
                answers.append(ABSTAIN_ANSWER)
        grounded = grounded_in_one_call(answers, contexts, pipe.encoder)
        rows = [score_answer(pipe, q, found, context, text, condition, grounded=grounded.get(i))
                for i, (q, found, context, text) in enumerate(zip(questions, hits, contexts, answers))]
        report.records[condition] = rows
        report.seconds[condition] = time.perf_counter() - start
    return report


def _generate(pipe: RAGPipeline, prompts: list[str], max_new_tokens: int, batch_size: int,
              stop_repeats: bool, progress: bool, label: str) -> list[str]:
    if not prompts:
        return []
    generator = pipe.generator
    if hasattr(generator, "generate_batch"):
        return generator.generate_batch(prompts, max_new_tokens, batch_size=batch_size,
                                        stop_repeats=stop_repeats, progress=progress)
    from tqdm.auto import tqdm
    return [generator.generate(p, max_new_tokens) for p in tqdm(prompts, desc=label, disable=not progress)]


def grounded_in_one_call(answers: Sequence[str], contexts: Sequence[list[str] | None], encoder) -> dict[int, float]:
    """index -> groundedness of ``answers[index]`` against ``contexts[index]``, for every answer that
    ``score_answer`` grounds (a context, and no abstention), with one embedding call (each distinct
    sentence once): the taught ``groundedness``'s values (tests/test_evaluate.py)."""
    scored = [i for i, (text, context) in enumerate(zip(answers, contexts))
              if context and not (text == ABSTAIN_ANSWER or says_idk(text))]
    if not scored:
        return {}
    supports = sentence_supports([answers[i] for i in scored], [contexts[i] for i in scored], encoder)
    # An answer without sentences claims nothing: 1.0, as the taught function says.
    return {i: float(np.mean(s >= taught.SUPPORT_THRESHOLD)) if s.size else 1.0 for i, s in zip(scored, supports)}


def score_answer(pipe: RAGPipeline, q: EvalQuestion, found: list, context: list[str] | None,
                 text: str, condition: str, grounded: float | None = None) -> dict:
    """One answer's record: what was generated, whether it abstained, and every score that applies.

    ``grounded``: the answer's groundedness when the caller computed it already (in a batch);
    otherwise ``groundedness(text, context, pipe.encoder)``.
    """
    abstained = text == ABSTAIN_ANSWER or says_idk(text)
    row: dict = {"question": q.question, "generated": text, "abstained": abstained,
                 "retrieved": [str(h.source.source) if getattr(h, "source", None) is not None else h.index
                               for h in found] if condition != "closed-book" else None}
    if q.has_answer:
        row["answerable"] = q.answer is not None
    if q.answer is not None:
        row["f1"] = taught.token_f1(text, q.answer)
        row["exact"] = taught.exact_match(text, q.answer)
        row["recall"] = taught.token_recall(text, q.answer)
        row["rouge_l_recall"] = taught.rouge_l(text, q.answer)[1]
    if q.sources and row["retrieved"] is not None:
        row["hit"] = float(any(_source_matches(s, q.sources) for s in row["retrieved"] or []))
    if context and not abstained:
        row["context_precision"] = taught.context_precision(text, context)
        row["grounded"] = (taught.groundedness(text, context, pipe.encoder) if grounded is None
                           else grounded)
        if condition == "rag-cite":
            valid, supported = taught.citation_accuracy(text, context, pipe.encoder)
            row["citations_valid"], row["citations_supported"] = valid, supported
    return row


def _source_matches(found: object, wanted: Sequence[str]) -> bool:
    """Whether a retrieved chunk's source file is one of ``wanted`` (a path, a name, or a glob)."""
    path = PurePath(str(found))
    for name in wanted:
        if str(path) == name or path.name == name or fnmatch(str(path), name) or str(path).endswith("/" + name):
            return True
    return False
