"""`python -m rag_helpers.evaluate`: answers scored on your own documents and questions.

A folder of notes and a JSON-lines question file: the command runs closed-book, RAG and extractive,
prints a table, writes the per-question records with `--json`, and refuses a malformed line by
naming it. `read_questions` is tested on its own for every kind of bad line.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag_helpers.engine.answer_eval import AnswerReport, QuestionFileError, read_questions, says_idk

ROOT = Path(__file__).resolve().parent.parent
NOTES = {
    "planets.md": "Jupiter is the largest planet in our solar system.\n\n"
                  "Venus is the second planet from the Sun and is the hottest.\n",
    "kitchen.txt": "The kettle is descaled with white vinegar once a month.\n\n"
                   "Knives are sharpened on the whetstone in the left drawer.\n",
}
QUESTIONS = [
    {"question": "Which planet is the largest?", "answer": "Jupiter", "sources": ["planets.md"]},
    {"question": "How is the kettle descaled?", "answer": "With white vinegar once a month.",
     "sources": "kitchen.txt"},
    {"question": "Who won the 2018 FIFA World Cup?", "answer": None},
]


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "rag_helpers.evaluate", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture()
def notes(tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    folder.mkdir()
    for name, text in NOTES.items():
        (folder / name).write_text(text)
    return folder


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_command_scores_three_conditions_and_writes_json(tmp_path, notes):
    questions = _write(tmp_path / "q.jsonl", [json.dumps(q) for q in QUESTIONS])
    out = tmp_path / "scores.json"
    done = _run("--docs", str(notes), "--questions", str(questions), "-k", "1", "--json", str(out),
                "--max-new-tokens", "24", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| closed-book |" in done.stdout and "| rag |" in done.stdout and "| extractive |" in done.stdout
    assert "calibrated on these documents" in done.stdout
    data = json.loads(out.read_text())
    assert set(data["conditions"]) == {"closed-book", "rag", "extractive"}
    for name, condition in data["conditions"].items():
        records = condition["records"]
        assert [r["question"] for r in records] == [q["question"] for q in QUESTIONS]
        for record in records:
            assert {"question", "generated", "abstained"} <= set(record)
        assert all("f1" in r for r in records[:2]) and "f1" not in records[2]
        assert 0.0 <= condition["means"]["f1"] <= 1.0
    rag, extractive = data["conditions"]["rag"], data["conditions"]["extractive"]
    # Retrieval found each question's file (one chunk per file here), and the off-topic one is refused.
    assert rag["means"]["hit"] == 1.0 and rag["records"][2]["abstained"]
    assert rag["means"]["unanswerable_answered"] == 0.0
    # Extraction copies the document's sentences: its answer to the kettle question holds every gold word.
    assert "vinegar" in extractive["records"][1]["generated"] and extractive["records"][1]["recall"] == 1.0


@pytest.mark.parametrize("line, message", [
    ('{"question": "ok"', "line 2: not valid JSON"),
    ('["a list"]', "line 2: expected a JSON object"),
    ('{"answer": "no question"}', 'line 2: "question" must be a non-empty string'),
    ('{"question": "   "}', 'line 2: "question" must be a non-empty string'),
    ('{"question": "q", "answer": 42}', 'line 2: "answer" must be a non-empty string or null'),
    ('{"question": "q", "sources": []}', 'line 2: "sources" must be a file name or a list'),
    ('{"question": "q", "gold": "x"}', "line 2: unknown field"),
])
def test_a_bad_line_is_named(tmp_path, line, message):
    path = _write(tmp_path / "q.jsonl", ['{"question": "fine"}', line])
    with pytest.raises(QuestionFileError, match=message.replace("[", r"\[")):
        read_questions(path)


def test_the_command_refuses_a_bad_line_without_a_traceback(tmp_path, notes):
    questions = _write(tmp_path / "q.jsonl", [json.dumps(QUESTIONS[0]), "", "{not json"])
    done = _run("--docs", str(notes), "--questions", str(questions), cwd=tmp_path)
    assert done.returncode == 2
    assert "line 3" in done.stderr and "Traceback" not in done.stderr


def test_read_questions_keeps_null_answers_and_blank_lines_apart(tmp_path):
    path = _write(tmp_path / "q.jsonl", [json.dumps(QUESTIONS[2]), "", '{"question": "no gold"}'])
    first, second = read_questions(path)
    assert first.answer is None and first.has_answer      # null: the documents cannot answer it
    assert second.answer is None and not second.has_answer  # no field: not scored for abstention
    with pytest.raises(QuestionFileError, match="no questions"):
        read_questions(_write(tmp_path / "empty.jsonl", ["", "  "]))


def test_says_idk_and_an_empty_report():
    assert says_idk("I don't know.") and says_idk("Sorry, I do not know") and says_idk("I don’t know")
    assert not says_idk("I know: Jupiter.") and not says_idk("I don't think so")
    assert AnswerReport().means() == {}


class _FixedAnswers:
    """A stand-in generator whose answers are given: the test is about scoring them, not writing them."""

    def __init__(self, answers: list[str]) -> None:
        self.answers = answers

    def generate_batch(self, prompts, max_new_tokens, **options):
        assert len(prompts) == len(self.answers)
        return list(self.answers)


def test_groundedness_scored_in_one_batch_equals_the_taught_function_answer_by_answer(encoder):
    import rag_helpers as rh
    from rag_helpers import answers as taught
    from rag_helpers.engine.answer_eval import EvalQuestion, evaluate_answers

    docs = [NOTES["planets.md"], NOTES["kitchen.txt"], "Paris is the capital of France. It lies on the Seine."]
    questions = [EvalQuestion("Which planet is the largest?", "Jupiter"),
                 EvalQuestion("How is the kettle descaled?", "With vinegar."),
                 EvalQuestion("What river runs through Paris?", "The Seine.")]
    answers = ["Jupiter is the largest planet. Bananas are a kind of berry.",
               "The kettle is descaled with vinegar. I think once a month.",
               "The Seine runs through Paris, the capital of France."]
    pipe = rh.RAGPipeline(docs, k=2, encoder=encoder, generator=_FixedAnswers(answers))
    rows = evaluate_answers(pipe, questions, ["rag"]).records["rag"]
    values = []
    for q, text, row in zip(questions, answers, rows):
        context = [h.document for h in pipe.retrieve(q.question)]
        assert row["generated"] == text
        assert row["grounded"] == taught.groundedness(text, context, encoder)
        values.append(row["grounded"])
    assert values[0] < 1.0 and values[2] == 1.0   # the banana sentence is supported by nothing retrieved
