"""Issue 19, "wrong or crashing behaviour": input text, documents, the explorer and the command line.

Each test here failed on the code before the fix (see the report of issue 19) and passes after it.
The models are the real packaged ones (conftest.py); command-line runs use a corpus of a few lines.
"""
from __future__ import annotations

import importlib.util
import inspect
import io
import os
import re
import signal
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest
from pypdf import PdfWriter
from pypdf.generic import ByteStringObject, DictionaryObject, NameObject, NumberObject, StreamObject

import rag_helpers as rh
from rag_helpers import __main__ as cli
from rag_helpers._infra.validation import check_query_text, check_text, check_texts
from rag_helpers.engine import documents as engine_documents
from rag_helpers.engine.chunking import chunk_documents, chunk_text
from rag_helpers.engine.documents import DocumentError, PdfWarning, load_documents

from rag_helpers.engine.embeddings import LongDocumentWarning
from test_documents import make_pdf

LINES = ["Bananas are yellow.", "The Nile is a long river in Africa.", "Paris is in France."]


def _run_cli(*args, input=None, **popen):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "rag_helpers", *args], capture_output=True, text=True,
                          env=env, timeout=300, input=input, **popen)


def _pipeline_takes_auto() -> bool:
    return "auto" in inspect.getsource(rh.RAGPipeline.__init__)


# The command line reads --lines through pipeline.read_lines, which is to become documents.read_lines.
needs_lines = pytest.mark.skipif(rh.engine.pipeline.read_lines is not engine_documents.read_lines,
                                 reason="pipeline.read_lines is not documents.read_lines yet")
needs_auto = pytest.mark.skipif(not _pipeline_takes_auto(), reason='RAGPipeline(min_score="auto") not there yet')


# 1. Control-only and combining-only text is refused like empty text ------------------------------------

NOTHING_TO_READ = ["\x07\x1b", "\u0301", "\x00", " \u0301\u0302 ", "\x7f\u200b", "\u20dd\n"]


@pytest.mark.parametrize("text", NOTHING_TO_READ)
def test_control_or_combining_only_text_is_refused_everywhere(text, encoder):
    with pytest.raises(ValueError, match=r"texts\[1\] is empty"):
        rh.embed(["Real text.", text], encoder)
    with pytest.raises(ValueError, match=r"documents\[1\] is empty"):
        rh.RAGPipeline(["Real text.", text], encoder=encoder, k=1)
    for check in (check_query_text, check_text):
        with pytest.raises(ValueError, match="is empty"):
            check(text, name="question")
    pipe = rh.RAGPipeline(["Real text.", "More text."], encoder=encoder, k=1)
    with pytest.raises(ValueError, match="question is empty"):
        pipe.retrieve(text)


@pytest.mark.parametrize("text", ["e\u0301", "\x07bell", "a\x00", "\u0915\u093f", "\u00e9"])
def test_a_visible_character_with_marks_or_controls_is_text(text):
    assert check_texts([text]) == [text]
    assert check_query_text(text) == text


# 2. A run of text without spaces is split by characters ---------------------------------------------------

@pytest.mark.parametrize("run", ["a" * 1_000_000, "0123456789abcdef" * 4_000])
def test_a_run_without_spaces_is_cut_into_chunks_that_fit_the_window(run, encoder):
    text = "A sentence before it. " + run + " And a sentence after it."
    for chunk_tokens in (200, 50):
        spans = chunk_text(text, encoder, chunk_tokens=chunk_tokens, overlap=min(40, chunk_tokens // 4))
        assert spans[0][0] == 0 and spans[-1][1] == len(text)
        # No chunk is longer than chunk_tokens characters: so it fits the window in tokens too.
        assert max(end - start for start, end in spans) <= chunk_tokens
        covered = np.zeros(len(text), bool)
        for start, end in spans:
            covered[start:end] = True
        assert covered[text.index(run[:10]):text.index(run[:10]) + len(run)].all()  # nothing of the run lost
    for start, end in spans[:3] + spans[-3:]:
        assert len(encoder.tokenizer(text[start:end], add_special_tokens=False)["input_ids"]) <= 50


def test_a_run_without_spaces_gets_chunks_from_files(tmp_path, encoder):
    (tmp_path / "blob.txt").write_text("Jupiter is the largest planet.\n\n" + "QUJD" * 5_000 + "\n")
    chunks = chunk_documents(load_documents(tmp_path).documents, encoder, chunk_tokens=100, overlap=10)
    assert max(len(c.text) for c in chunks) <= 100
    assert chunks[0].text == "Jupiter is the largest planet."
    assert all(c.line == 3 for c in chunks[1:])


# 3. Non-UTF-8 file names ------------------------------------------------------------------------------

@pytest.mark.skipif(sys.platform == "win32", reason="needs byte file names")
def test_a_non_utf8_file_name_gives_a_source_that_prints(tmp_path):
    folder = os.fsencode(tmp_path)
    with open(os.path.join(folder, b"caf\xe9.txt"), "wb") as f:
        f.write(b"Coffee is served hot.\n")
    with open(os.path.join(folder, b"bad\xff.bin"), "wb") as f:
        f.write(b"\x00")
    result = load_documents(tmp_path)
    (document,) = result.documents
    assert document.source.encode("utf-8").endswith(b"caf\\xe9.txt")
    assert all(s.path.encode("utf-8") for s in result.skipped)
    assert "bad\\xff.bin" in result.report()
    # Named directly (a command-line argument is decoded the same way, with surrogates).
    named = load_documents(os.fsdecode(os.path.join(folder, b"caf\xe9.txt")))
    assert named.documents[0].source == document.source
    with pytest.raises(FileNotFoundError) as err:
        load_documents(os.fsdecode(os.path.join(folder, b"gone\xe9.txt")))
    str(err.value).encode("utf-8")


@pytest.mark.skipif(sys.platform == "win32", reason="needs byte file names")
def test_the_command_line_prints_a_non_utf8_file_name(tmp_path, capsys, generator):
    folder = os.fsencode(tmp_path)
    with open(os.path.join(folder, b"caf\xe9.txt"), "wb") as f:
        f.write("\n".join(LINES).encode() + b"\n")
    code = cli.main(["Which river is in Africa?", "-k", "1", "--docs", str(tmp_path), "--max-new-tokens", "4",
                     "--generator-model", rh.PACKAGED_GENERATOR, "--no-stream", "--min-score", "-1"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"Source: {tmp_path}/caf\\xe9.txt:1 | Bananas" in out


# 4. The explorer shows "$" as it is ------------------------------------------------------------------

def test_the_explorer_shows_dollar_signs_literally(encoder, generator):
    pytest.importorskip("ipywidgets")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    from rag_helpers.explorer import make_explorer

    docs = ["Pears cost $5 and $10 at the market.", r"A broken formula: $\frac{a}{$ in a note.", "Cats sleep a lot."]
    pipe = rh.RAGPipeline(docs, k=2, encoder=encoder, generator=generator, max_new_tokens=6)
    explorer = make_explorer(pipe)
    explorer.run("What do pears cost at the market?", k=3)
    assert explorer.error is None and explorer.answer
    assert bytes(explorer.chart.value).startswith(b"\x89PNG")
    fig = explorer.figure
    renderer = FigureCanvasAgg(fig).get_renderer()
    labels = fig.axes[0].get_yticklabels()
    assert {doc for _, doc in explorer.hits} == set(docs)
    for label, (_, doc) in zip(labels, explorer.hits):
        literal = Text(0, 0, doc, parse_math=False, fontproperties=label.get_fontproperties())
        literal.set_figure(fig)
        # Drawn exactly like the document's own characters, not as TeX.
        assert label.get_window_extent(renderer).width == pytest.approx(literal.get_window_extent(renderer).width)


# 5. --lines reads any text file; a PDF all pages; CR line endings ------------------------------------

@pytest.mark.parametrize("read_lines", [engine_documents.read_lines,
                                        pytest.param(cli._read_lines, marks=needs_lines)])
@pytest.mark.parametrize("name", ["lines.csv", "notes", "lines.TXT"])
def test_lines_reads_any_text_file(name, read_lines, tmp_path):
    path = tmp_path / name
    path.write_text("\n".join(LINES) + "\n")
    assert read_lines(str(path)) == LINES


@pytest.mark.parametrize("read_lines", [engine_documents.read_lines,
                                        pytest.param(cli._read_lines, marks=needs_lines)])
def test_lines_reads_every_page_of_a_pdf_and_says_so(read_lines, tmp_path):
    path = tmp_path / "three_pages.pdf"
    path.write_bytes(make_pdf(["Page one line.", "", "Page three, first line.\nPage three, second line."]))
    with pytest.warns(PdfWarning, match=r"three_pages.pdf: read as lines from pages 1 and 3 of 3 \(page 2 has no"):
        lines = read_lines(str(path))
    assert lines == ["Page one line.", "Page three, first line.", "Page three, second line."]
    path.write_bytes(make_pdf(["One.", "Two."]))
    with pytest.warns(PdfWarning, match=r"read as lines from all 2 pages$"):
        assert read_lines(str(path)) == ["One.", "Two."]


def test_lines_refuses_a_folder_and_binary_content(tmp_path):
    with pytest.raises(DocumentError, match="a folder"):
        engine_documents.read_lines(tmp_path)
    (tmp_path / "data.csv").write_bytes(b"a,b\n\x00\x01")
    with pytest.raises(DocumentError, match="data.csv: binary .NUL byte at offset 4"):
        engine_documents.read_lines(tmp_path / "data.csv")


@needs_lines
def test_lines_reads_standard_input():
    done = _run_cli("Which river is in Africa?", "-k", "1", "--lines", "/dev/stdin", "--max-new-tokens", "4",
                    "--generator-model", rh.PACKAGED_GENERATOR, "--no-stream", "--min-score", "-1",
                    input="\n".join(LINES) + "\n")
    assert done.returncode == 0, done.stderr
    assert "Document: The Nile is a long river in Africa." in done.stdout


@pytest.mark.parametrize("ending", ["\r", "\r\n", "\n"])
def test_citations_count_lines_with_any_line_ending(ending, tmp_path, encoder):
    text = ending.join(["Line one says alpha.", "Line two says beta.", "", "Line four says gamma."]) + ending
    (tmp_path / "notes.txt").write_bytes(text.encode())
    chunks = chunk_documents(load_documents(tmp_path).documents, encoder, chunk_tokens=5, overlap=0)
    assert [(c.text, c.line) for c in chunks] == [
        ("Line one says alpha.", 1), ("Line two says beta.", 2), ("Line four says gamma.", 4)]


# 6. --min-score --------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "2.0", "-1.5", "1e400", "abc", "", "True"])
@pytest.mark.parametrize("attached", [False, True])
def test_cli_refuses_a_min_score_that_is_not_a_score(value, attached, capsys):
    args = ["q", f"--min-score={value}"] if attached else ["q", "--min-score", value]
    with pytest.raises(SystemExit) as exit_:
        cli.main(args)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "--min-score" in err and "auto" in err and "-1" in err and repr(value) in err


@pytest.mark.parametrize("args, expected", [
    ([], "auto"), (["--min-score", "auto"], "auto"), (["--min-score", "0.3"], 0.3),
    (["--min-score", "-0.5"], -0.5), (["--min-score=-0.5"], -0.5), (["--min-score", "-1"], -1.0),
    (["--min-score", "1"], 1.0), (["--min-score", "AUTO"], "auto"),
])
def test_cli_reads_a_min_score(args, expected):
    assert cli._parse_args(["q", *args]).min_score == expected


@needs_auto
def test_cli_says_in_one_line_where_it_abstains(tmp_path):
    path = tmp_path / "facts.txt"
    path.write_text("\n".join(LINES) + "\n")
    done = _run_cli("What is the boiling point of mercury?", "-k", "1", "--lines", str(path),
                    "--generator-model", rh.PACKAGED_GENERATOR, "--no-stream", "--max-new-tokens", "4")
    assert done.returncode == 0, done.stderr
    said = [line for line in done.stderr.splitlines() if "calibrated" in line]
    assert len(said) == 1, done.stderr
    assert re.fullmatch(r"\"I don't know\" below score -?\d\.\d{3} \(calibrated on these documents; "
                        r"--min-score to change\)", said[0])


# 7. Ctrl-C while the answer streams ------------------------------------------------------------------

@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT")
def _sigint_as_in_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])


#: ``RAG_STRESS=200`` repeats the Ctrl-C test 200 times, the signal sent at delays spread over the first
#: second of the answer (while the model reads the prompt, then while pieces stream).
CTRL_C_REPEATS = int(os.environ.get("RAG_STRESS", "0")) or 1


def _ctrl_c_delays(repeats: int) -> list[float]:
    if repeats == 1:
        return [0.05]
    return np.random.default_rng(19).uniform(0.0, 1.0, repeats).round(3).tolist()


def test_ctrl_c_while_the_answer_streams_exits_130_with_one_line(tmp_path):
    path = tmp_path / "facts.txt"
    path.write_text("\n".join(LINES) + "\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    failures = []
    for delay in _ctrl_c_delays(CTRL_C_REPEATS):
        process = subprocess.Popen(
            [sys.executable, "-m", "rag_helpers", "Tell me everything about rivers.", "-k", "1", "--lines", str(path),
             "--generator-model", rh.PACKAGED_GENERATOR, "--max-new-tokens", "400", "--min-score", "-1"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
            # As in a terminal: SIGINT handled by default and not blocked. A child inherits an ignored
            # SIGINT and a blocked signal mask from this process, which earlier tests or libraries may
            # have changed; in the full suite the signal was once never delivered (exit status 0).
            preexec_fn=_sigint_as_in_a_terminal)
        try:
            seen = b""
            while b"--- Final Answer from LLM ---\n" not in seen:
                byte = process.stdout.read(1)
                assert byte, process.stderr.read().decode()
                seen += byte
            # The answer's header is printed just before generate(stream=True) starts the model's thread,
            # which then reads the prompt for a few hundred milliseconds before the first piece: a short
            # delay lands while the prompt is read, a longer one while the answer streams. (Waiting for
            # pieces of the answer let a short one end before the signal arrived, twice in the full
            # suite: exit status 0.)
            time.sleep(delay)
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
        err = err.decode()
        lines = err.rstrip("\n").splitlines()
        if not (process.returncode == 130 and err.count("interrupted") == 1 and "Traceback" not in err
                and "terminate called" not in err and lines and lines[-1] == "interrupted"):
            failures.append(f"signal {delay} s after the header: exit {process.returncode}, stderr {err[-600:]!r}")
    assert not failures, f"{len(failures)} of {CTRL_C_REPEATS} runs went wrong:\n" + "\n".join(failures[:5])


# 8. Messages that say what happened ------------------------------------------------------------------

@pytest.mark.skipif(not hasattr(os, "symlink") or sys.platform == "win32", reason="needs symbolic links")
def test_a_symlink_loop_is_called_a_loop(tmp_path):
    os.symlink(tmp_path / "b.txt", tmp_path / "a.txt")
    os.symlink(tmp_path / "a.txt", tmp_path / "b.txt")
    with pytest.raises(OSError, match="symbolic link.*loop") as err:
        load_documents(tmp_path / "a.txt")
    assert "no such file" not in str(err.value)
    os.symlink(tmp_path / "nowhere.txt", tmp_path / "broken.txt")
    with pytest.raises(FileNotFoundError, match="broken symbolic link"):
        load_documents(tmp_path / "broken.txt")


def _pdf_with_content(data: bytes) -> bytes:
    writer = PdfWriter()
    page = writer.add_blank_page(612, 792)
    stream = StreamObject()
    stream.set_data(data)
    stream[NameObject("/Filter")] = NameObject("/FlateDecode")
    page[NameObject("/Contents")] = writer._add_object(stream)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def test_a_decompression_bomb_is_not_called_a_scanned_pdf(tmp_path):
    path = tmp_path / "bomb.pdf"
    path.write_bytes(_pdf_with_content(zlib.compress(b" " * 80_000_000, 9)))  # 80 MB from 80 kB
    with pytest.raises(DocumentError) as err:
        load_documents(path)
    message = str(err.value)
    assert "scanned" not in message and "OCR" not in message
    assert "decompress" in message and "limit" in message and "page 1" in message


def _aes_256_pdf() -> bytes:
    """A PDF whose /Encrypt dictionary asks for AES-256 (revision 6)."""
    writer = PdfWriter()
    writer.add_blank_page(612, 792)
    encrypt = writer._add_object(DictionaryObject({
        NameObject("/Filter"): NameObject("/Standard"), NameObject("/V"): NumberObject(5),
        NameObject("/R"): NumberObject(6), NameObject("/Length"): NumberObject(256),
        NameObject("/P"): NumberObject(-4), NameObject("/O"): ByteStringObject(b"\x01" * 48),
        NameObject("/U"): ByteStringObject(b"\x02" * 48), NameObject("/OE"): ByteStringObject(b"\x03" * 32),
        NameObject("/UE"): ByteStringObject(b"\x04" * 32), NameObject("/Perms"): ByteStringObject(b"\x05" * 16),
        NameObject("/CF"): DictionaryObject({NameObject("/StdCF"): DictionaryObject({
            NameObject("/CFM"): NameObject("/AESV3"), NameObject("/Length"): NumberObject(32)})}),
        NameObject("/StmF"): NameObject("/StdCF"), NameObject("/StrF"): NameObject("/StdCF"),
    }))
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue().replace(
        b"trailer\n<<", b"trailer\n<<\n/Encrypt %d 0 R /ID [<00112233445566778899aabbccddeeff> "
                        b"<00112233445566778899aabbccddeeff>]" % encrypt.idnum, 1)


def test_an_aes_pdf_is_told_about_the_password_too(tmp_path):
    if importlib.util.find_spec("cryptography") is not None:
        pytest.skip("with cryptography installed pypdf reads AES; this is about the message without it")
    path = tmp_path / "aes.pdf"
    path.write_bytes(_aes_256_pdf())
    with pytest.raises(DocumentError, match="encrypted PDF") as err:
        load_documents(path)
    message = str(err.value)
    assert "cryptography" in message and "password" in message and "AES" in message


def test_pypdf_warnings_are_said_in_our_words_naming_the_file(tmp_path, capfd):
    path = tmp_path / "cut.pdf"
    path.write_bytes(make_pdf(["Readable text."]).replace(b"%%EOF", b"%%EO"))  # pypdf repairs it, with a warning
    with pytest.warns(PdfWarning) as caught:
        result = load_documents(path)
    assert [d.text.strip() for d in result.documents] == ["Readable text."]
    (warning,) = caught
    assert str(path) in str(warning.message) and "damaged" in str(warning.message)
    assert "EOF marker" in str(warning.message)  # what pypdf said, quoted
    assert capfd.readouterr().err == ""  # nothing printed raw


def test_a_long_question_is_not_called_a_long_document(encoder, sample_embeddings):
    question = "which planet is the biggest? " * 400
    with pytest.warns(LongDocumentWarning) as caught:
        rh.retrieve_with_numpy(question, rh.SAMPLE_DOCUMENTS, sample_embeddings, encoder, k=1)
    message = str(caught[0].message)
    assert "query" in message and "document" not in message
    with pytest.warns(LongDocumentWarning, match="question is longer") as caught:
        rh.embed([question], encoder, what="question")
    assert "document" not in str(caught[0].message)


def test_document_rows_shorter_than_unit_length_are_refused(encoder, sample_embeddings):
    short = sample_embeddings.copy()
    short[3] *= 0.5
    query = sample_embeddings[3]
    with pytest.raises(ValueError, match=r"not L2-normalized: row\(s\) 3 have norm 0.5 "):
        rh.cosine_scores(query, short)
    with pytest.raises(ValueError, match=r"not L2-normalized: row\(s\) 3 have norm 0.5 "):
        rh.retrieve_with_numpy("which planet is the biggest?", rh.SAMPLE_DOCUMENTS, short, encoder, k=1)
    np.testing.assert_array_equal(rh.cosine_scores(query, sample_embeddings), sample_embeddings @ query)
