"""__main__.py: the command line, in-process and as a subprocess."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import rag_helpers as rh
from rag_helpers import __main__ as cli
from conftest import JUPITER, VENUS



def _run_cli(*args, cwd=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "rag_helpers", *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=300,
    )


def test_cli_prints_what_the_original_script_printed():
    done = _run_cli("which planet is the biggest?", "--max-new-tokens", "24")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("Using device: cpu\n")
    assert (
        "--- Retrieved Documents (Top 2) ---\n"
        f"Score: 0.7672 | Document: {JUPITER}\n"
        f"Score: 0.5384 | Document: {VENUS}\n"
    ) in out
    assert "--- Prompt Sent to LLM ---\n" + rh.build_prompt(rh.SAMPLE_QUESTION, [JUPITER, VENUS]) in out
    answer = out.split("--- Final Answer from LLM ---\n", 1)[1]
    assert "Jupiter" in answer
    # The offline fallback is said once, in one line, on stderr.
    fallback_lines = [line for line in done.stderr.splitlines() if "OfflineFallbackWarning" in line]
    assert len(fallback_lines) == 1 and "SmolLM2" in fallback_lines[0]


def test_cli_reads_one_document_per_line(tmp_path, capsys, generator):
    docs = tmp_path / "docs.txt"
    docs.write_bytes("\ufeffBananas are yellow.\n\nThe Nile is a long river in Africa.\nParis is in France.\n".encode())
    code = cli.main(["Which river is in Africa?", "-k", "1", "--lines", str(docs), "--max-new-tokens", "8",
                     "--generator-model", rh.PACKAGED_GENERATOR, "--no-stream"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Top 1" in out and "Document: The Nile is a long river in Africa." in out
    assert "OfflineFallbackWarning" not in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["-k", "0"], "k must be at least 1"),
        (["-k", "50"], "k=50 is larger than the number of documents (10)"),
        (["   "], "query is empty"),
        (["--docs", "/no/such/file.txt"], "no such file or folder: '/no/such/file.txt'"),
        (["--lines", "/no/such/file.txt"], "no such file or folder: '/no/such/file.txt'"),
        (["--docs", ""], "--docs got an empty path"),
        (["--lines", ""], "--lines got an empty path"),
        (["--max-new-tokens", "0"], "--max-new-tokens must be a positive integer"),
        (["--chunk-tokens", "10", "--overlap", "10"], "overlap=10 must be smaller than chunk_tokens=10"),
        (["--generator-model", "no-such-org/no-such-model"], "could not load generator 'no-such-org/no-such-model'"),
    ],
)
def test_cli_bad_input_is_one_clear_error(args, message, capsys):
    try:
        code = cli.main(args)
    except SystemExit as exit_:  # argparse-style exits carry their message
        code, err = 2, str(exit_.code)
    else:
        err = capsys.readouterr().err
    assert code == 2
    assert message in err


@pytest.fixture
def no_models(monkeypatch):
    """Any model load fails the test: for errors that must come before the slow part."""
    for name in ("rag_helpers.engine.pipeline.load_encoder", "rag_helpers.engine.pipeline.load_generator"):
        monkeypatch.setattr(name, lambda *a, **kw: pytest.fail("a model was loaded before the error"))


@pytest.mark.parametrize("content, message", [
    (b"good line\n\xff\xfe bad\n", "invalid UTF-8 (byte 0xff at offset 10, line 2"),
    (b"text\x00\x01\x02 binary", "NUL byte at offset 4"),
])
@pytest.mark.parametrize("option", ["--docs", "--lines"])
def test_a_file_that_is_not_utf8_text_is_one_line_naming_the_offset(option, content, message, tmp_path,
                                                                     capsys, no_models):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(content)
    assert cli.main(["q", option, str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(bad) in err and message in err


def test_bad_arguments_are_refused_before_any_model_loads(capsys, no_models):
    for args in (["q", "--max-new-tokens", "0"], ["  "], ["q", "-k", "0"], ["q", "--docs", ""]):
        assert cli.main(args) == 2
        assert capsys.readouterr().err.startswith("error: ")


def test_ctrl_c_ends_with_one_line_and_no_traceback(monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.RAGPipeline, "__init__", interrupted)
    assert cli.main(["q"]) == 130
    assert capsys.readouterr().err == "\ninterrupted\n"


def test_a_folder_with_bad_files_says_what_was_skipped_and_answers_from_the_rest(tmp_path, capsys, generator):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "planets.md").write_text("# Planets\n\nJupiter is the largest planet in our solar system.\n")
    (folder / "ocean.txt").write_text("The Pacific Ocean is the largest ocean on Earth.\n")
    (folder / "image.bin.txt").write_bytes(b"\x89PNG\x00\x00binary")
    (folder / "empty.rst").write_text("")
    (folder / "slides.pptx").write_bytes(b"PK")
    code = cli.main([rh.SAMPLE_QUESTION, "--docs", str(folder), "-k", "2", "--max-new-tokens", "8",
                     "--generator-model", rh.PACKAGED_GENERATOR, "--no-stream"])
    out, err = capsys.readouterr()
    assert code == 0, err
    skipped = [line for line in err.splitlines() if line.startswith("skipped")]
    assert len(skipped) == 1 and "skipped 3 files" in skipped[0]
    assert "binary" in skipped[0] and "empty" in skipped[0] and "unsupported" in skipped[0]
    first_hit = out.split("--- Retrieved Documents (Top 2) ---\n", 1)[1].splitlines()[0]
    assert f"Source: {folder / 'planets.md'}:1 | # Planets Jupiter is the largest planet" in first_hit
    assert out.split("--- Final Answer from LLM ---\n", 1)[1].strip()


def test_forty_long_documents_are_trimmed_to_the_window_not_refused(tmp_path, capsys, generator):
    words = "orbit moon gas giant rock ocean river mountain city light energy water air".split()
    lines = [" ".join(words[(i + j) % len(words)] for j in range(1000)) for i in range(40)]
    docs = tmp_path / "long.txt"
    docs.write_text("\n".join(lines) + "\n")
    code = cli.main([rh.SAMPLE_QUESTION, "--lines", str(docs), "-k", "40", "--max-new-tokens", "8",
                     "--generator-model", rh.PACKAGED_GENERATOR, "--no-stream"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "--- Retrieved Documents (Top 40) ---" in out
    assert "(the prompt keeps the best " in out and "of them: the rest do not fit" in out
    prompt = out.split("--- Prompt Sent to LLM ---\n", 1)[1].split("--- Final Answer from LLM ---")[0]
    context = prompt.split("CONTEXT:\n", 1)[1].split("\n\nQUESTION:", 1)[0].splitlines()
    kept = int(out.split("(the prompt keeps the best ", 1)[1].split()[0])
    assert 0 < kept < 40 and len(context) == kept


def test_the_command_line_is_a_front_end_of_the_pipeline_only():
    # Layers: a front end imports the pipeline (the one assembler), plumbing and the sample data;
    # never a step (chunking, documents, corpus, retrieval, ...) directly.
    import ast
    from pathlib import Path

    tree = ast.parse(Path(cli.__file__).read_text(encoding="utf-8"))
    relative = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level}
    absolute = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    absolute |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and not node.level}
    assert {m for m in relative if not m.startswith("_infra.")} == {"engine.pipeline", "knowledge_base"}
    assert not any(m.startswith("rag_helpers") for m in absolute)


def test_by_default_an_off_topic_question_gets_i_dont_know_and_the_readme_example_an_answer():
    done = _run_cli("Who won the 2018 FIFA World Cup?", "--corpus", "python-docs", "-k", "4", "--no-stream",
                    "--max-new-tokens", "4")
    assert done.returncode == 0, done.stderr
    assert "the model was not asked" in done.stdout and "I don't know" in done.stdout
    assert "(calibrated on these documents; --min-score to change)" in done.stderr
    done = _run_cli("How do I read a file line by line?", "--corpus", "python-docs", "-k", "4", "--no-stream",
                    "--max-new-tokens", "8")
    assert done.returncode == 0, done.stderr
    assert "--- Final Answer from LLM ---" in done.stdout and "the model was not asked" not in done.stdout


def test_unsupported_sentences_are_flagged_or_dropped(tmp_path):
    facts = tmp_path / "facts.txt"
    facts.write_text("The kettle is descaled with white vinegar once a month.\n")
    # A question the single document cannot answer, asked anyway (--min-score -1): whatever the model
    # invents is checked against the document, sentence by sentence.
    args = ("Who wrote the novel War and Peace, and when?", "--lines", str(facts), "-k", "1", "--min-score", "-1",
            "--max-new-tokens", "40", "--no-stream")
    flagged = _run_cli(*args)
    assert flagged.returncode == 0, flagged.stderr
    flagged_answer, note = flagged.stdout.split("--- Final Answer from LLM ---\n", 1)[1].split("\n\n(", 1)
    assert "flagged: no sentence of the retrieved documents supports" in note
    dropped = _run_cli(*args, "--unsupported", "drop")
    assert dropped.returncode == 0, dropped.stderr
    dropped_answer, note = dropped.stdout.split("--- Final Answer from LLM ---\n", 1)[1].split("\n\n(", 1)
    # Greedy decoding wrote the same answer both times; dropping kept only its supported sentences.
    assert "left out" in note and len(dropped_answer) < len(flagged_answer)


def test_extractive_answers_without_loading_a_model(tmp_path):
    facts = tmp_path / "facts.txt"
    facts.write_text("The kettle is descaled with white vinegar once a month.\nKnives live in the left drawer.\n")
    done = _run_cli("How is the kettle descaled?", "--lines", str(facts), "-k", "1", "--extractive",
                    "--generator-model", "no/such-model")  # never loaded: a wrong name costs nothing
    assert done.returncode == 0, done.stderr
    answer = done.stdout.split("--- Extractive Answer", 1)[1]
    assert "The kettle is descaled with white vinegar once a month." in answer
    assert "Prompt Sent to LLM" not in done.stdout
