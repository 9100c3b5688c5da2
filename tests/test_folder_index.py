"""The index that keeps up with a folder (issue 18): only what changed is embedded, nothing stale comes back.

Through Python (``update_folder_index``, ``RAGPipeline.from_files(index=...)``) and the command
line (``--index``), with the real packaged encoder. Kill tests fork a writer that has the encoder
loaded and kill it (SIGKILL) at every step of writing a new generation, and at random moments;
``RAG_STRESS=200`` repeats the random ones 200 times.
"""
from __future__ import annotations

import io
import json
import multiprocessing
import os
import random
import re
import shutil
import signal
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest

from rag_helpers.__main__ import main
from rag_helpers.engine import folder_index as fi
from rag_helpers.engine.documents import DocumentError
from rag_helpers.engine.embeddings import embed
from rag_helpers.engine.pipeline import RAGPipeline
from rag_helpers.incremental import content_key

REPEATS = int(os.environ.get("RAG_STRESS", "0")) or 3
FORK = multiprocessing.get_context("fork")
LINE = re.compile(r"^Index (.+): (\d+) chunks \((\d+) embedded now, (\d+) reused, (\d+) removed\)$", re.M)

TOPICS = ["rivers", "volcanoes", "glaciers", "deserts", "forests", "islands", "caves", "lakes"]
FACT = "The lighthouse keeper of Quillon Bay is a retired astronomer named Odessa Varga."
QUESTION = "Who keeps the lighthouse of Quillon Bay?"


def write_folder(folder: Path, n: int = 8) -> None:
    """n small notes, several chunks each at chunk_tokens=32."""
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        sub = folder / ("notes" if i % 2 else "guides")
        sub.mkdir(parents=True, exist_ok=True)
        body = "\n\n".join(f"Paragraph {j} about {topic}: fact number {i * 10 + j} says that {topic} "
                           f"number {j} lies {j * 7 + i} kilometres from the coast of region {i}."
                           for j in range(4))
        (sub / f"{i:02d}_{topic}.md").write_text(f"# {topic.title()}\n\n{body}\n")


@pytest.fixture
def folder(tmp_path):
    docs = tmp_path / "docs"
    write_folder(docs)
    return docs


def update(index, docs, encoder):
    return fi.update_folder_index(index, [docs], encoder, chunk_tokens=32, overlap=8)


def fresh_vectors(update_result, encoder) -> np.ndarray:
    return embed([c.text for c in update_result.chunks], encoder)


def test_first_run_embeds_all_second_none_then_only_what_changed(folder, tmp_path, encoder):
    index = tmp_path / "index"
    first = update(index, folder, encoder)
    assert len(first) > 16 and first.embedded == len(first) and first.reused == first.removed == 0
    np.testing.assert_allclose(first.vectors, fresh_vectors(first, encoder), atol=1e-6)

    second = update(index, folder, encoder)
    assert (second.embedded, second.reused, second.removed) == (0, len(first), 0)
    assert second.keys == first.keys and np.array_equal(second.vectors, first.vectors)

    edited = folder / "notes" / "01_volcanoes.md"
    deleted = folder / "guides" / "02_glaciers.md"
    added = folder / "notes" / "99_new.md"
    edited.write_text(edited.read_text() + "\n" + FACT + "\n")
    deleted_chunks = [c.text for c in first.chunks if c.source.endswith("02_glaciers.md")]
    deleted.unlink()
    added.write_text("# New\n\nThe tallest tree in region nine is a redwood called Hyperion Two.\n")

    third = update(index, folder, encoder)
    new_rows = [i for i, key in enumerate(third.keys) if key not in set(first.keys)]
    assert third.embedded == len(new_rows) > 0
    assert {third.chunks[i].source for i in new_rows} <= {str(edited), str(added)}
    assert third.reused == len(third) - third.embedded
    assert third.removed == len(set(first.keys) - set(third.keys)) >= len(deleted_chunks)
    assert not any(c.source == str(deleted) for c in third.chunks)
    # Every vector is the one embedding from scratch gives: reuse mapped the right rows.
    np.testing.assert_allclose(third.vectors, fresh_vectors(third, encoder), atol=1e-6)

    pipe = RAGPipeline.from_files([folder], index=index, chunk_tokens=32, overlap=8, k=3, encoder=encoder)
    assert (pipe.index_update.embedded, pipe.index_update.removed) == (0, 0)
    hits = pipe.retrieve(QUESTION)
    assert hits[0].source.source == str(edited) and "Odessa Varga" in hits[0].document
    for text in deleted_chunks:  # the deleted file's own words find nothing of it
        assert all(hit.source.source != str(deleted) for hit in pipe.retrieve(text, k=len(pipe.documents)))


def test_a_moved_chunk_is_not_embedded_again(folder, tmp_path, encoder):
    index = tmp_path / "index"
    first = update(index, folder, encoder)
    (folder / "notes" / "01_volcanoes.md").rename(folder / "guides" / "moved.md")
    moved = update(index, folder, encoder)
    assert moved.embedded == 0 and moved.removed == 0 and sorted(moved.keys) == sorted(first.keys)


def test_settings_change_rechunks_and_model_is_part_of_the_key(folder, tmp_path, encoder):
    index = tmp_path / "index"
    update(index, folder, encoder)
    bigger = fi.update_folder_index(index, [folder], encoder, chunk_tokens=64, overlap=8)
    assert bigger.embedded > 0 and all(len(encoder.tokenizer(c.text)["input_ids"]) <= 66 for c in bigger.chunks)
    assert content_key("same text", "model A") != content_key("same text", "model B")


def test_sections_and_state_on_disk(folder, tmp_path, encoder):
    index = tmp_path / "index"
    result = update(index, folder, encoder)
    assert set(result.sections) == {t.title() for t in TOPICS}
    pointer = json.loads((index / "CURRENT").read_text())
    assert re.fullmatch(r"gen-\d{6}", pointer["generation"])
    reopened = fi.open_folder_index(index)
    assert reopened.keys == result.keys and np.array_equal(reopened.vectors, result.vectors)
    assert [c.location for c in reopened.chunks] == [c.location for c in result.chunks]


def test_a_damaged_index_is_said_and_rebuilt(folder, tmp_path, encoder, capsys):
    index = tmp_path / "index"
    first = update(index, folder, encoder)
    generation = index / json.loads((index / "CURRENT").read_text())["generation"]
    vectors = generation / "index" / "vectors.npy"
    data = bytearray(vectors.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte in the middle of the matrix
    vectors.write_bytes(bytes(data))
    capsys.readouterr()
    again = update(index, folder, encoder)
    err = capsys.readouterr().err
    assert "vectors.npy" in err and "building it again from the files" in err
    assert again.embedded == len(first)  # nothing trusted from the damaged generation
    np.testing.assert_allclose(again.vectors, first.vectors, atol=1e-6)

    state = index / json.loads((index / "CURRENT").read_text())["generation"] / "state.json"
    state.write_text(state.read_text().replace('"files"', '"files" ', 1))
    capsys.readouterr()
    update(index, folder, encoder)
    assert "state.json was altered" in capsys.readouterr().err


def test_bad_input(folder, tmp_path, encoder):
    with pytest.raises(NotADirectoryError, match="is a file"):
        update(folder / "notes" / "01_volcanoes.md", folder, encoder)
    with pytest.raises(FileNotFoundError, match="no such file"):
        update(tmp_path / "index", tmp_path / "missing", encoder)
    (tmp_path / "bad.txt").write_bytes(b"caf\xe9")
    with pytest.raises(DocumentError, match="offset 3"):
        fi.update_folder_index(tmp_path / "index", [tmp_path / "bad.txt"], encoder)
    with pytest.raises(TypeError, match="not Documents"):
        RAGPipeline.from_files([rh_doc()], index=tmp_path / "i2", encoder=encoder)


def rh_doc():
    from rag_helpers.documents import Document
    return Document("text", "a.txt")


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_command_line_index(folder, tmp_path, encoder, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    index = str(tmp_path / "index")
    common = ["--docs", str(folder), "--index", index, "--chunk-tokens", "32", "--overlap", "8", "--extractive",
              "--min-score", "-1"]
    code, out, _ = run_cli(QUESTION, *common)
    n, embedded = (int(x) for x in LINE.search(out).group(2, 3))
    assert code == 0 and LINE.search(out).group(1) == index and embedded == n > 0
    code, out, _ = run_cli(QUESTION, *common)
    assert LINE.search(out).group(2, 3, 4, 5) == (str(n), "0", str(n), "0")

    edited = folder / "guides" / "04_forests.md"
    edited.write_text(edited.read_text() + "\n" + FACT + "\n")
    (folder / "notes" / "03_deserts.md").unlink()
    code, out, _ = run_cli(QUESTION, *common)
    _, total, embedded, reused, removed = LINE.search(out).groups()
    assert 0 < int(embedded) < n and int(removed) > 0 and int(embedded) + int(reused) == int(total)
    assert f"Source: {edited}:" in out.split("---")[2].splitlines()[1]  # the first hit
    assert "Odessa Varga" in out and "03_deserts" not in out

    code, out, err = run_cli(QUESTION, *common, "--where", "*/notes/*")
    assert code == 0 and "/guides/" not in out.split("Extractive Answer")[0]
    code, out, _ = run_cli(QUESTION, *common, "--database", str(tmp_path / "db"), "--where", "*/guides/*")
    assert code == 0 and re.search(r"^Database .*db: \d+ chunks \(\d+ upserted, 0 deleted\)$", out, re.M)
    assert f"Source: {edited}:" in out.split("---")[2].splitlines()[1]
    code, out, err = run_cli(QUESTION, *common, "--file-type", "pdf")
    assert code == 2 and "no chunk matches" in err and "Traceback" not in err
    code, _, err = run_cli(QUESTION, "--lines", str(folder / "notes" / "01_volcanoes.md"), "--index", index)
    assert code == 2 and "--index keeps an index of the files of --docs" in err
    code, _, err = run_cli(QUESTION, "--docs", str(folder), "--database", str(tmp_path / "db"))
    assert code == 2 and "give --index DIR too" in err
    code, _, err = run_cli(QUESTION, "--docs", str(folder), "--index", str(edited))
    assert code == 2 and "is a file" in err


# ------------------------------------------------------------------ kill -9


def _writer(index: Path, docs: Path, encoder, kill_at: int | None, delay: float | None) -> None:
    """Update the index in a forked child; die (SIGKILL) at write step ``kill_at`` or after ``delay`` s."""
    steps = {"n": 0}

    def step(function):
        def wrapped(*args, **kwargs):
            steps["n"] += 1
            if steps["n"] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            result = function(*args, **kwargs)
            steps["n"] += 1
            if steps["n"] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return result
        return wrapped

    for name in ("save_index", "fsync_file", "fsync_folder", "write_file_atomically"):
        setattr(fi, name, step(getattr(fi, name)))
    fi.os.rename = step(os.rename)
    fi.shutil.rmtree = step(shutil.rmtree)
    if delay is not None:
        signal.setitimer(signal.ITIMER_REAL, delay)
        signal.signal(signal.SIGALRM, lambda *_: os.kill(os.getpid(), signal.SIGKILL))
    update(index, docs, encoder)
    os._exit(0)


def _change(docs: Path, rng: random.Random) -> None:
    """Move a file to another name: a new generation is written, and nothing needs embedding.

    The forked writer must not run the encoder: a child forked after the parent's OpenMP threads
    ran can hang in them. Edits that need embedding are tested in-process above.
    """
    files = sorted(docs.rglob("*.md"))
    target = rng.choice(files)
    target.rename(target.with_name(f"m{rng.randrange(10**6)}_{target.name}"))


def _check_after_kill(index: Path, docs: Path, encoder) -> None:
    """The killed run left the old index or the new one, whole; the next run repairs and is right."""
    if (index / "CURRENT").exists():
        opened = fi.open_folder_index(index)  # raises if half of one and half of another
        assert len(opened.keys) == len(opened.vectors) == len(opened.chunks)
    result = update(index, docs, encoder)
    np.testing.assert_allclose(result.vectors, fresh_vectors(result, encoder), atol=1e-6)
    names = sorted(p.name for p in index.iterdir())
    assert names == [".lock", "CURRENT", json.loads((index / "CURRENT").read_text())["generation"]], names


def _run_child(index, docs, encoder, kill_at=None, delay=None) -> int:
    child = FORK.Process(target=_writer, args=(index, docs, encoder, kill_at, delay))
    child.start()
    child.join(120)
    assert child.exitcode is not None, "the writer hung"
    return child.exitcode


def test_kill_at_every_step_of_an_update(folder, tmp_path, encoder):
    index = tmp_path / "index"
    update(index, folder, encoder)
    rng = random.Random(0)
    step = 1
    while True:
        _change(folder, rng)
        code = _run_child(index, folder, encoder, kill_at=step)
        _check_after_kill(index, folder, encoder)
        if code == 0:  # the run got past its last step: every step was hit
            break
        assert code == -signal.SIGKILL
        step += 1
    assert step > 8


def test_kill_at_random_moments(folder, tmp_path, encoder):
    index = tmp_path / "index"
    rng = random.Random(1)
    start = time.perf_counter()
    update(index, folder, encoder)
    _change(folder, rng)
    update(index, folder, encoder)
    took = (time.perf_counter() - start) / 2
    for _ in range(REPEATS):
        _change(folder, rng)
        _run_child(index, folder, encoder, delay=rng.uniform(0.001, took * 1.5))
        _check_after_kill(index, folder, encoder)


def _plain_writer(index: Path, docs: Path, encoder, out: Path) -> None:
    out.write_text(json.dumps(update(index, docs, encoder).keys))
    os._exit(0)


def test_two_runs_at_once(folder, tmp_path, encoder):
    index = tmp_path / "index"
    update(index, folder, encoder)
    rng = random.Random(2)
    for _ in range(REPEATS):
        _change(folder, rng)
        outs = [tmp_path / "keys0.json", tmp_path / "keys1.json"]
        runs = [FORK.Process(target=_plain_writer, args=(index, folder, encoder, out)) for out in outs]
        for run in runs:
            run.start()
        for run in runs:
            run.join(120)
        assert [run.exitcode for run in runs] == [0, 0]
        assert json.loads(outs[0].read_text()) == json.loads(outs[1].read_text())
        _check_after_kill(index, folder, encoder)


# ------------------------------------------------------------------ the vector database


def test_the_database_gives_the_same_hits_and_keeps_up(folder, tmp_path, encoder):
    from rag_helpers.engine.filters import Where

    options = dict(index=tmp_path / "index", chunk_tokens=32, overlap=8, k=5, encoder=encoder)
    plain = RAGPipeline.from_files([folder], **options)
    db = RAGPipeline.from_files([folder], database=tmp_path / "db", **options)
    assert db.store_sync == (len(db.documents), 0)
    questions = ["How far are the volcanoes from the coast?", "forests of region 4", QUESTION]
    filters = [None, Where(source="*/notes/*"), Where(section="Lakes"), Where(suffix="md", section="[DF]*")]
    for question in questions:
        for where in filters:
            expected, got = plain.retrieve(question, where=where), db.retrieve(question, where=where)
            assert [h.index for h in got] == [h.index for h in expected]
            np.testing.assert_allclose([h.score for h in got], [h.score for h in expected], atol=1e-5)
    db.store.close()

    deleted = folder / "guides" / "02_glaciers.md"
    deleted.unlink()
    edited = folder / "notes" / "05_islands.md"
    edited.write_text(edited.read_text() + "\n" + FACT + "\n")
    db = RAGPipeline.from_files([folder], database=tmp_path / "db", **options)
    upserted, removed = db.store_sync
    assert 0 < db.index_update.embedded <= upserted < len(db.documents)  # only the new rows, not all again
    assert removed > 0 and len(db.store) == len(db.documents)
    hits = db.retrieve(QUESTION, k=len(db.documents))
    assert hits[0].source.source == str(edited)
    assert all(h.source.source != str(deleted) for h in hits)
    db.store.close()
    with pytest.raises(ValueError, match="give index=DIR"):
        RAGPipeline.from_files([folder], database=tmp_path / "db", encoder=encoder)
