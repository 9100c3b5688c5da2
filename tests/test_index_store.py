"""The index on disk (rag_helpers.engine.index_store): round trips, memory-mapped search, and refusing bad folders.

* what is saved comes back: vectors, texts, chunks with their sources and places;
* searching the memory map gives what rag_helpers.search gives in memory, bit for bit;
* a truncated, reshaped, retyped, swapped, pickled or out-of-folder file is
  refused with an error naming the file, before any search; a stale index
  (other texts, other model) too, and load_or_build_index builds it again.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rag_helpers as rh
from rag_helpers.engine import index_store as ist
from rag_helpers.engine.chunking import Chunk
from rag_helpers.engine.index_store import CorruptIndexError, StaleIndexError
from rag_helpers.engine.quantization import binary_codes, search_binary


def unit_rows(n: int, d: int, seed: int = 0) -> np.ndarray:
    return rh.l2_normalize(np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32))


def make_chunks(n: int) -> list[Chunk]:
    return [Chunk(f"chunk {i}: naïve café ✓ {'x' * (i % 5)}", f"docs/page{i % 3}.md", 10 * i, 10 * i + 7,
                  i + 1, None if i % 2 else i // 2) for i in range(n)]


@pytest.fixture
def saved(tmp_path):
    """An index of 120 chunks (24-d vectors) saved in tmp_path / "index"."""
    vectors, chunks = unit_rows(120, 24), make_chunks(120)
    folder = ist.save_index(tmp_path / "index", vectors, chunks, model="model-A")
    return folder, vectors, chunks


def rewrite_manifest(folder: Path, **changes) -> None:
    """Record the files as they are now (as if a consistent writer had made them), plus ``changes``."""
    path = folder / ist.MANIFEST
    manifest = json.loads(path.read_text())
    for name in manifest["files"]:
        manifest["files"][name] = {**ist._quick_digest(folder / name), "sha256": ist.sha256_of(folder / name)}
    manifest.update(changes)
    path.write_text(json.dumps(manifest))


# ---------------------------------------------------------------- round trip
def test_what_is_saved_comes_back(saved):
    folder, vectors, chunks = saved
    index = ist.open_index(folder, documents=chunks, model="model-A", verify=True)
    assert isinstance(index.vectors, np.memmap) and not index.vectors.flags.writeable
    np.testing.assert_array_equal(index.vectors, vectors)
    assert len(index) == 120 and index.dim == 24
    assert [index.chunk(i) for i in range(120)] == chunks
    assert index.text(7) == chunks[7].text and index.chunk(3).location == "docs/page0.md:4"
    np.testing.assert_array_equal(index.codes, binary_codes(vectors))
    with pytest.raises(IndexError, match="row 120 is out of range"):
        index.text(120)


def test_plain_texts_have_no_chunk_table(tmp_path):
    texts = ["first text", "second text", "third"]
    index = ist.open_index(ist.save_index(tmp_path, unit_rows(3, 8), texts, model="m", codes=False))
    assert [index.text(i) for i in range(3)] == texts
    assert index.chunk(1) is None and index.codes is None
    with pytest.raises(ValueError, match="saved without binary codes"):
        index.search_binary(unit_rows(1, 8)[0], 2)


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(1, 300), st.integers(1, 5), st.data())
def test_memory_mapped_search_is_in_memory_search(tmp_path_factory, n, q, data):
    folder = tmp_path_factory.mktemp("index")
    vectors = unit_rows(n, 16, seed=n)
    vectors[n // 2 :: 3] = vectors[0]  # exact ties across blocks
    index = ist.open_index(ist.save_index(folder, vectors, [f"t{i}" for i in range(n)], model="m"))
    k = data.draw(st.integers(1, n))
    block_bytes = data.draw(st.sampled_from([64, 4096, rh.engine.blocked_search.SCORE_BLOCK_BYTES]))
    queries = unit_rows(q, 16, seed=n + 1)
    for query in (queries, queries[0]):
        got = index.search(query, k, block_bytes=block_bytes)
        expected = rh.search(query, vectors, k, block_bytes=block_bytes)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])
    shortlist = data.draw(st.integers(k, n))
    got = index.search_binary(queries, k, shortlist)
    np.testing.assert_array_equal(got[0], search_binary(queries, binary_codes(vectors), vectors, k, shortlist)[0])


def test_search_checks_its_input_like_search(saved):
    index = ist.open_index(saved[0])
    with pytest.raises(ValueError, match="dimension mismatch"):
        index.search(np.ones(5) / np.sqrt(5), 3)
    with pytest.raises(ValueError, match=r"k=121 is larger than the number of documents \(120\)"):
        index.search(saved[1][0], 121)


def test_a_bad_vector_in_the_file_is_named_not_searched(tmp_path):
    vectors = unit_rows(50, 8)
    ist.save_index(tmp_path, vectors, [f"t{i}" for i in range(50)], model="m")
    spoiled = np.load(tmp_path / "vectors.npy")
    spoiled[41] = np.nan
    np.save(tmp_path / "vectors.npy", spoiled)
    rewrite_manifest(tmp_path)  # the digests agree: only the scores can tell
    with pytest.raises(ValueError, match=r"docs has NaN or infinite values in row\(s\) 41"):
        ist.open_index(tmp_path).search(vectors[0], 3, block_bytes=4 * 10)


# ------------------------------------------------------------ refused folders
def test_no_manifest_means_no_index(tmp_path):
    with pytest.raises(FileNotFoundError, match="no index folder"):
        ist.open_index(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="manifest.json is missing"):
        ist.open_index(tmp_path)


@pytest.mark.parametrize(
    "spoil, message",
    [
        (lambda f, v: (f / "vectors.npy").write_bytes((f / "vectors.npy").read_bytes()[:-100]),
         r"vectors.npy is truncated: [\d,]+ bytes, its header and shape need [\d,]+"),
        (lambda f, v: np.save(f / "vectors.npy", v.astype(np.float64)),
         r"vectors.npy: expected float32 \(120, 24\) in C order, the file holds float64 \(120, 24\)"),
        (lambda f, v: np.save(f / "vectors.npy", v[:-1]),
         r"vectors.npy: expected shape \(120, 24\) \(from manifest.json\), the file holds \(119, 24\)"),
        (lambda f, v: np.save(f / "vectors.npy", np.asfortranarray(v)), r"in Fortran order"),
        (lambda f, v: np.save(f / "vectors.npy", np.array([{"code": "run me"}] * 120, dtype=object), allow_pickle=True),
         r"vectors.npy holds Python objects \(dtype object\): refused"),
        (lambda f, v: (f / "vectors.npy").write_bytes(b"not an npy file at all" * 100),
         r"vectors.npy is not a readable .npy file"),
        (lambda f, v: np.save(f / "vectors.npy", v[::-1].copy()),
         r"vectors.npy is not the file manifest.json describes"),
        (lambda f, v: (f / "chunk_table.npy").unlink(), r"chunk_table.npy is missing"),
        (lambda f, v: (f / "manifest.json").write_text("{not json"), r"manifest.json is not valid JSON"),
        (lambda f, v: (f / "manifest.json").write_text('{"format": 1, "n": 120}'),
         r"manifest.json: field 'dim' is missing or not a int"),
        (lambda f, v: (f / "manifest.json").write_text(
            (f / "manifest.json").read_text().replace('"format": 1', '"format": 9')),
         r"format 9, this version reads format 1"),
    ],
    ids=["truncated", "wrong dtype", "wrong shape", "Fortran order", "pickle inside", "not npy", "swapped file",
         "missing file", "manifest not JSON", "manifest field missing", "newer format"],
)
def test_a_corrupt_folder_is_refused_naming_the_file(saved, spoil, message):
    folder, vectors, _ = saved
    spoil(folder, vectors)
    with pytest.raises(CorruptIndexError, match=message):
        ist.open_index(folder)


def test_verify_hashes_every_byte(tmp_path):
    vectors = unit_rows(5000, 16)  # 320 kB: the quick digest reads only its first and last 64 KiB
    folder = ist.save_index(tmp_path, vectors, [f"t{i}" for i in range(5000)], model="m")
    data = bytearray((folder / "vectors.npy").read_bytes())
    data[len(data) // 2] ^= 1  # one bit in the middle
    (folder / "vectors.npy").write_bytes(bytes(data))
    ist.open_index(folder, verify=False)  # the ends-only check, asked for, cannot see it ...
    with pytest.raises(CorruptIndexError, match=r"vectors.npy: its SHA-256 differs"):
        ist.open_index(folder)  # ... the default, every byte, does


def test_a_chunk_table_that_does_not_add_up_is_refused(saved):
    folder = saved[0]
    offsets = np.load(folder / "text_offsets.npy")
    offsets[5], offsets[6] = offsets[6], offsets[5]
    np.save(folder / "text_offsets.npy", offsets)
    rewrite_manifest(folder)
    with pytest.raises(CorruptIndexError, match="text_offsets.npy does not cut text_bytes.npy into pieces"):
        ist.open_index(folder)
    table = np.load(folder / "chunk_table.npy")
    np.save(folder / "text_offsets.npy", np.sort(offsets))
    table[17, 0] = 99  # a source that does not exist
    np.save(folder / "chunk_table.npy", table)
    rewrite_manifest(folder)
    with pytest.raises(CorruptIndexError, match=r"chunk_table.npy: row\(s\) 17 are not valid"):
        ist.open_index(folder)


def test_a_link_out_of_the_folder_is_refused(saved, tmp_path):
    folder, vectors, _ = saved
    outside = tmp_path / "elsewhere.npy"
    os.replace(folder / "vectors.npy", outside)
    os.symlink(outside, folder / "vectors.npy")
    with pytest.raises(CorruptIndexError, match="points outside"):
        ist.open_index(folder)


# --------------------------------------------------------------------- stale
def test_a_stale_index_is_refused(saved):
    folder, _, chunks = saved
    ist.open_index(folder, documents=chunks, model="model-A")  # fresh: fine
    ist.open_index(folder, documents=[c.text for c in chunks])  # the same texts, as strings: fine
    with pytest.raises(StaleIndexError, match="another model"):
        ist.open_index(folder, model="model-B")
    changed = chunks[:-1] + [Chunk("a new last chunk", "docs/new.md", 0, 16)]
    with pytest.raises(StaleIndexError, match="other texts"):
        ist.open_index(folder, documents=changed)
    with pytest.raises(StaleIndexError, match="other texts"):
        ist.open_index(folder, documents=chunks[:-1])
    moved = [Chunk(c.text, "moved/" + c.source, c.start, c.end, c.line, c.page) for c in chunks]
    with pytest.raises(StaleIndexError, match="same texts but other sources or places"):
        ist.open_index(folder, documents=moved)


def test_save_refuses_what_it_cannot_store(tmp_path):
    with pytest.raises(ValueError, match="3 vectors but 2 documents"):
        ist.save_index(tmp_path, unit_rows(3, 4), ["a", "b"], model="m")
    with pytest.raises(ValueError, match=r"not L2-normalized"):
        ist.save_index(tmp_path, unit_rows(2, 4) * 2, ["a", "b"], model="m")
    with pytest.raises(ValueError, match=r"documents\[1\] is empty"):
        ist.save_index(tmp_path, unit_rows(2, 4), ["a", "  "], model="m")
    with pytest.raises(TypeError, match="not a mix"):
        ist.save_index(tmp_path, unit_rows(2, 4), [make_chunks(1)[0], "b"], model="m")


def test_an_interrupted_write_leaves_the_old_index(saved, monkeypatch):
    folder, vectors, chunks = saved

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        ist.save_index(folder, vectors[::-1].copy(), chunks[::-1], model="model-B")
    monkeypatch.undo()
    index = ist.open_index(folder, documents=chunks, model="model-A")  # the old index, whole
    np.testing.assert_array_equal(index.vectors, vectors)
    assert not [p for p in folder.iterdir() if ".tmp" in p.name]


# ------------------------------------------- building with the real encoder
def test_load_or_build_builds_reuses_and_rebuilds(tmp_path, encoder, capsys, monkeypatch):
    folder = tmp_path / "planets"
    docs = list(rh.SAMPLE_DOCUMENTS)
    built = ist.load_or_build_index(folder, docs, encoder)
    np.testing.assert_allclose(built.vectors, rh.embed(docs, encoder), atol=1e-6)
    assert capsys.readouterr().err == ""  # nothing to rebuild: there was nothing

    calls = []
    real_embed = ist.embed
    monkeypatch.setattr(ist, "embed", lambda texts, enc: calls.append(len(texts)) or real_embed(texts, enc))
    again = ist.load_or_build_index(folder, docs, encoder)
    assert calls == [] and len(again) == len(docs)  # fresh: reused, nothing embedded

    indices, _ = again.search(rh.embed([rh.SAMPLE_QUESTION], encoder)[0], 1)
    assert "Jupiter" in again.text(int(indices[0]))

    ist.load_or_build_index(folder, docs[:-1], encoder)  # other texts: built again
    assert calls == [len(docs) - 1] and "Rebuilding the index" in capsys.readouterr().err
    (folder / "codes.npy").write_bytes(b"garbage")
    rebuilt = ist.load_or_build_index(folder, docs[:-1], encoder)  # corrupt: built again, saying which file
    assert "codes.npy" in capsys.readouterr().err and len(rebuilt) == len(docs) - 1
