"""Writes on disk are old-or-new: never neither, never a mix (rag_helpers.engine.index_store and the caches).

Each writer runs in a forked child (the parent has already imported
everything, so a child starts in milliseconds) and is killed with SIGKILL
after a random delay, or runs at the same time as another writer. Afterwards
the folder must hold one writer's complete index (its texts *and* its
vectors) or the index that was there before, and the next run must remove
what the killed writer left behind.

The default run repeats each random test ``REPEATS`` times (a few seconds);
``RAG_STRESS=200`` runs it 200 times.
"""
from __future__ import annotations

import multiprocessing
import os
import random
import signal
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

import rag_helpers as rh
from rag_helpers._infra import cache
from rag_helpers.engine import embedding_cache as ec
from rag_helpers.engine import index_store as ist
from rag_helpers.engine.chunking import Chunk
from rag_helpers.engine.index_store import CorruptIndexError

REPEATS = int(os.environ.get("RAG_STRESS", "0")) or 10
N, DIM = 20_000, 64  # 5 MB of vectors: a write takes a few tens of ms, long enough to be hit at random
FORK = multiprocessing.get_context("fork")


def corpus(writer: int) -> tuple[np.ndarray, list[str]]:
    """Writer ``writer``'s vectors and texts: every text names its writer and row."""
    vectors = rh.l2_normalize(np.random.default_rng(writer).standard_normal((N, DIM)).astype(np.float32))
    return vectors, [f"writer {writer} row {i}" for i in range(N)]


CORPORA = {w: corpus(w) for w in (0, 1, 2)}
PACKED = {w: np.frombuffer("".join(texts).encode(), dtype=np.uint8) for w, (_, texts) in CORPORA.items()}


def whose(index: ist.DiskIndex) -> int:
    """Which writer's complete index this is; fails on any mix of two writers' files."""
    writer = int(index.text(0).split()[1])
    vectors, texts = CORPORA[writer]
    assert len(index) == N and index.text(N - 1) == texts[-1]
    assert np.array_equal(index._text_bytes, PACKED[writer]), "texts of two writers mixed"
    assert np.array_equal(index.vectors, vectors), f"writer {writer}'s texts with other vectors"
    return writer


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name or p.name.startswith(".building")
                  or p.name == getattr(ist, "_JOURNAL", ".journal.json"))


def _save_in_child(folder: Path, writer: int, times: int = 1, start_at: float = 0.0) -> None:
    delay = start_at - time.time()
    if delay > 0:
        time.sleep(delay)
    vectors, texts = CORPORA[writer]
    for _ in range(times):
        ist.save_index(folder, vectors, texts, model=f"writer {writer}", codes=True)


def start(target, *args) -> multiprocessing.Process:
    child = FORK.Process(target=target, args=args, daemon=True)
    child.start()
    return child


def kill(child: multiprocessing.Process) -> None:
    try:
        os.kill(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    child.join()


@pytest.fixture(scope="module")
def save_seconds(tmp_path_factory) -> float:
    """How long one save of N rows takes here (the window a kill must fall into)."""
    folder = tmp_path_factory.mktemp("timing")
    vectors, texts = CORPORA[0]
    ist.save_index(folder, vectors, texts, model="writer 0")
    begin = time.perf_counter()
    ist.save_index(folder, vectors, texts, model="writer 0")
    return time.perf_counter() - begin


# ------------------------------------------------------------ kill -9 at random
def test_a_writer_killed_at_a_random_moment_leaves_the_old_or_the_new_index(tmp_path, save_seconds):
    rng = random.Random(1234)
    outcomes = {0: 0, 1: 0}
    for rep in range(REPEATS):
        folder = tmp_path / f"index{rep}"
        vectors, texts = CORPORA[0]
        ist.save_index(folder, vectors, texts, model="writer 0")  # the old index
        child = start(_save_in_child, folder, 1)
        time.sleep(rng.uniform(0, 1.5 * save_seconds + 0.02))  # fork + the write; sometimes after it
        kill(child)
        outcomes[whose(ist.open_index(folder))] += 1  # never neither, never a mix
        assert leftovers(folder) == [], "the next run removes what the killed writer left"
    print(f"\nkilled writer, {REPEATS} repetitions: old index {outcomes[0]}, new index {outcomes[1]}")


def test_two_writers_at_once_give_one_writers_complete_index(tmp_path):
    outcomes = {1: 0, 2: 0}
    opened = 0
    for rep in range(REPEATS):
        folder = tmp_path / f"index{rep}"
        vectors, texts = CORPORA[0]
        ist.save_index(folder, vectors, texts, model="writer 0")
        at = time.time() + 0.05  # both start at the same moment, then write three times each
        children = [start(_save_in_child, folder, w, 3, at) for w in (1, 2)]
        while any(c.is_alive() for c in children):  # a reader meanwhile: always a whole index
            whose(ist.open_index(folder))
            opened += 1
        for c in children:
            c.join()
            assert c.exitcode == 0
        outcomes[whose(ist.open_index(folder))] += 1
        assert leftovers(folder) == []
    print(f"\ntwo writers, {REPEATS} repetitions: writer 1 last {outcomes[1]}, writer 2 last {outcomes[2]}; "
          f"{opened} opens while they wrote, all whole")


def test_two_writers_and_a_killer(tmp_path, save_seconds):
    """Two writers at once, one of them killed at a random moment: still one whole index."""
    rng = random.Random(99)
    for rep in range(REPEATS):
        folder = tmp_path / f"index{rep}"
        ist.save_index(folder, *CORPORA[0], model="writer 0")
        at = time.time() + 0.02
        victim, other = start(_save_in_child, folder, 1, 2, at), start(_save_in_child, folder, 2, 1, at)
        time.sleep(0.02 + rng.uniform(0, 3 * save_seconds))
        kill(victim)
        other.join()
        assert other.exitcode == 0
        assert whose(ist.open_index(folder)) in (0, 1, 2)
        assert leftovers(folder) == []


# ---------------------------------------------------- deterministic crash points
def test_a_crash_while_installing_is_finished_by_the_next_open(tmp_path, monkeypatch):
    """Killed after the journal was written, half-way through the renames: the next open completes the new index."""
    folder = ist.save_index(tmp_path / "index", *CORPORA[0], model="writer 0")
    renames = []
    real_replace = os.replace

    def dies_after_two(src, dst):
        if len(renames) == 2:
            raise KeyboardInterrupt  # stands for the kill: the journal is on disk, the renames are half done
        renames.append(dst)
        real_replace(src, dst)

    monkeypatch.setattr(ist.os, "replace", dies_after_two)
    with pytest.raises(KeyboardInterrupt):
        ist.save_index(folder, *CORPORA[1], model="writer 1")
    monkeypatch.undo()
    assert ist._JOURNAL in os.listdir(folder) and len(renames) == 2
    assert whose(ist.open_index(folder)) == 1  # rolled forward: the new index, whole
    assert leftovers(folder) == []


def test_an_error_while_writing_leaves_the_old_index(tmp_path, monkeypatch):
    folder = ist.save_index(tmp_path / "index", *CORPORA[0], model="writer 0")
    saved = []
    real_save = np.save

    def full_disk(f, array, **kw):
        if saved:
            raise OSError(28, "No space left on device")
        saved.append(1)
        real_save(f, array, **kw)

    monkeypatch.setattr(np, "save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        ist.save_index(folder, *CORPORA[1], model="writer 1")
    monkeypatch.undo()
    assert whose(ist.open_index(folder)) == 0 and leftovers(folder) == []


def _slow_build(folder: Path) -> None:
    def slow_embed(texts, encoder):
        time.sleep(30)  # killed long before this ends

    ist.embed = slow_embed
    ist.model_fingerprint = lambda encoder: "fake"
    ist.build_index(folder, CORPORA[1][1], encoder=None)


def _start_building(folder):
    """A child process running a slow build_index on folder, once its .building folder exists."""
    child = start(_slow_build, folder)
    deadline = time.time() + 20
    while not [p for p in folder.iterdir() if p.name.startswith(".building")] and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    return child


def test_a_build_killed_while_embedding_is_cleaned_up_by_the_next_run(tmp_path):
    folder = ist.save_index(tmp_path / "index", *CORPORA[0], model="writer 0")
    child = _start_building(folder)
    kill(child)
    assert [p for p in folder.iterdir() if p.name.startswith(".building")], "the child never started building"
    assert whose(ist.open_index(folder)) == 0  # the old index, whole, and the killed build's folder removed
    assert leftovers(folder) == []


def test_a_live_builders_folder_is_not_removed(tmp_path):
    folder = ist.save_index(tmp_path / "index", *CORPORA[0], model="writer 0")
    child = _start_building(folder)
    try:
        ist.save_index(folder, *CORPORA[2], model="writer 2")  # another run meanwhile
        assert [p for p in folder.iterdir() if p.name.startswith(".building")], "removed a live build's folder"
    finally:
        kill(child)


# ------------------------------------------------------------- changed rows
def test_one_changed_row_is_caught_on_open_and_rebuilt(tmp_path, capsys):
    vectors, texts = CORPORA[0]
    folder = ist.save_index(tmp_path / "index", vectors, texts, model="fake")
    spoiled = np.load(folder / "vectors.npy")
    spoiled[N // 2] = vectors[7]  # a valid unit row, in the middle: size and both ends unchanged
    with open(folder / "vectors.npy", "r+b") as f:  # in place, as a stray write would
        np.save(f, spoiled)
    with pytest.raises(CorruptIndexError, match=r"vectors.npy: its SHA-256 differs"):
        ist.open_index(folder)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ist, "embed", lambda t, e: vectors[[int(x.split()[-1]) for x in t]])
        mp.setattr(ist, "model_fingerprint", lambda e: "fake")
        rebuilt = ist.load_or_build_index(folder, texts, encoder=None)
    err = capsys.readouterr().err
    assert "Rebuilding the index" in err and "vectors.npy" in err
    assert whose(rebuilt) == 0


def test_what_a_full_check_costs_is_small(tmp_path):
    """Hashing every byte on open: measured here, and it must stay a small part of a second at N rows."""
    folder = ist.save_index(tmp_path / "index", *CORPORA[0], model="m")
    begin = time.perf_counter()
    ist.open_index(folder)
    full = time.perf_counter() - begin
    begin = time.perf_counter()
    ist.open_index(folder, verify=False)
    quick = time.perf_counter() - begin
    assert full < 1.0, f"opening {N:,} x {DIM} with every byte hashed took {full:.3f} s"
    print(f"\nopen with every byte hashed {full * 1e3:.1f} ms, ends only {quick * 1e3:.1f} ms")


# ---------------------------------------------------- odd names stored safely
def test_a_source_name_that_is_not_utf8_round_trips(tmp_path):
    name = os.fsdecode(b"docs/caf\xe9-latin1.txt")  # what load_documents gives for such a file
    chunks = [Chunk("first chunk", name, 0, 11), Chunk("second chunk", "plain.md", 0, 12, 2)]
    folder = ist.save_index(tmp_path / "index", rh.l2_normalize(np.eye(2, 4, dtype=np.float32)), chunks, model="m")
    index = ist.open_index(folder, documents=chunks, model="m")
    assert index.chunk(0) == chunks[0] and os.fsencode(index.chunk(0).source) == b"docs/caf\xe9-latin1.txt"


# ---------------------------------------------------------- the caches' temporary files
def _slow_cache_write(path: Path) -> None:
    real = np.savez

    def half_then_hang(f, **arrays):
        f.write(b"PK half a zip file")
        f.flush()
        time.sleep(30)

    np.savez = half_then_hang
    try:
        ec._save(path, {"format": 2}, np.ones((2, 4), dtype=np.float32) / 2)
    finally:
        np.savez = real


def test_an_embedding_cache_write_killed_half_way_is_cleaned_up(tmp_path):
    path = tmp_path / "embeddings" / "abc.npz"
    child = start(_slow_cache_write, path)
    deadline = time.time() + 20
    while not (path.parent.is_dir() and [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]):
        assert time.time() < deadline
        time.sleep(0.01)
    kill(child)
    assert not path.exists()
    ec._save(path, {"format": 2}, np.ones((2, 4), dtype=np.float32) / 2)  # the next write
    assert sorted(p.name for p in path.parent.iterdir() if not p.name.startswith(".lock")) == ["abc.npz"]


def test_a_temporary_name_is_stale_only_when_its_writer_is_gone(tmp_path):
    child = start(time.sleep, 30)
    try:
        live = tmp_path / cache.temporary_name("x", pid=child.pid)
        live.mkdir()
        assert not cache.is_stale(live)
    finally:
        kill(child)
    assert cache.is_stale(live)
    assert not cache.is_stale(tmp_path / "not-a-temporary-name")


def _convert_for_this_run_and_hang(tmpdir: str, unusable_cache: str) -> None:
    from rag_helpers._infra import gguf_cache, models

    tempfile.tempdir = tmpdir
    os.environ["RAG_CACHE_DIR"] = unusable_cache

    def slow(gguf_path, folder):
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"x" * 1000)
        time.sleep(30)  # killed half-way

    gguf_cache._convert = slow
    gguf_cache.ensure_converted(models.packaged_generator_gguf())


def test_a_run_only_conversion_killed_half_way_is_removed_by_a_later_run(tmp_path, monkeypatch, capsys):
    from rag_helpers._infra import gguf_cache, models

    tmpdir, blocker = tmp_path / "tmp", tmp_path / "blocker"
    tmpdir.mkdir()
    blocker.write_text("a file where the cache folder should be")
    killed, alive = (start(_convert_for_this_run_and_hang, str(tmpdir), str(blocker)) for _ in range(2))
    try:
        deadline = time.time() + 60
        while len(list(tmpdir.glob("rag-generator*/model/model.safetensors"))) < 2:
            assert time.time() < deadline, "the children never started converting"
            time.sleep(0.02)
        kill(killed)
        assert len(list(tmpdir.glob("rag-generator*"))) == 2
        monkeypatch.setattr(tempfile, "tempdir", str(tmpdir))
        monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path / "cache"))  # a later run, with a usable cache
        monkeypatch.setattr(gguf_cache, "_convert", lambda g, folder: folder.mkdir(parents=True))
        capsys.readouterr()
        gguf_cache.ensure_converted(models.packaged_generator_gguf())
        left = list(tmpdir.glob("rag-generator*"))
        assert [p.name for p in left] == [p.name for p in left if str(alive.pid) in p.name] and len(left) == 1, \
            "the killed run's folder must go, the running one's stay"
        assert "left behind by a run that was killed" in capsys.readouterr().err
    finally:
        kill(alive)


def _dead_pid() -> int:
    child = start(time.sleep, 0)
    child.join()
    return child.pid


def test_remove_stale_removes_only_dead_writers_leftovers(tmp_path):
    dead, live = _dead_pid(), os.getpid()
    (tmp_path / cache.temporary_name("entry", pid=dead)).mkdir()
    (tmp_path / cache.temporary_name("entry", pid=dead, suffix=".tmp")).write_text("half")
    kept = [tmp_path / cache.temporary_name("entry", pid=live), tmp_path / "entry", tmp_path / ".entry.notatemp"]
    for path in kept:
        path.mkdir()
    removed = cache.remove_stale(tmp_path, "entry")
    assert len(removed) == 2 and sorted(tmp_path.iterdir()) == sorted(kept)


def test_build_atomically_swaps_an_entry_in_one_step(tmp_path):
    folder = tmp_path / "entry"
    cache.build_atomically(folder, lambda tmp: (tmp / "v").write_text("old"))
    cache.build_atomically(folder, lambda tmp: (tmp / "v").write_text("new"))
    assert (folder / "v").read_text() == "new" and list(tmp_path.iterdir()) == [folder]
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir(), (a / "x").write_text("a"), (b / "x").write_text("b")
    if cache._exchange(a, b):  # Linux renameat2(RENAME_EXCHANGE): both names exist at every moment
        assert (a / "x").read_text() == "b" and (b / "x").read_text() == "a"
