"""embed_cached with the real packaged encoder: hits, misses, stale and corrupt files."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

import rag_helpers as rh
from rag_helpers.engine.embedding_cache import embed_cached, embedding_cache_path

TEXTS = rh.SAMPLE_DOCUMENTS


@pytest.fixture
def refuse_to_encode(encoder, monkeypatch):
    """After this, any call to the encoder fails: a cache hit must not need it."""

    def no_encoding(*args, **kwargs):
        raise AssertionError("the encoder was called: the cache was not used")

    monkeypatch.setattr(encoder, "encode", no_encoding)


def test_first_call_embeds_and_writes_a_plain_npz(encoder, sample_embeddings, tmp_path):
    vectors = embed_cached(TEXTS, encoder, tmp_path)
    np.testing.assert_array_equal(vectors, sample_embeddings)
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), 384)
    path = embedding_cache_path(TEXTS, encoder, tmp_path)
    assert [p.name for p in tmp_path.iterdir() if p.name != ".lock"] == [path.name]  # no temporary file left
    with np.load(path, allow_pickle=False) as data:
        np.testing.assert_array_equal(data["embeddings"], vectors)
        key = json.loads(str(data["key"]))
    assert key["n"] == len(TEXTS)


def test_a_hit_returns_the_identical_array_without_encoding(encoder, tmp_path, request):
    first = embed_cached(TEXTS, encoder, tmp_path)
    request.getfixturevalue("refuse_to_encode")
    second = embed_cached(TEXTS, encoder, tmp_path)
    np.testing.assert_array_equal(second, first)
    assert second.dtype == np.float32


def test_other_texts_or_order_get_their_own_file(encoder, tmp_path):
    base = embedding_cache_path(TEXTS, encoder, tmp_path)
    assert embedding_cache_path(TEXTS[::-1], encoder, tmp_path) != base
    assert embedding_cache_path(TEXTS[:-1], encoder, tmp_path) != base
    # Texts are hashed with their lengths: joining two texts differently is another key.
    assert embedding_cache_path(["ab", "c"], encoder, tmp_path) != embedding_cache_path(["a", "bc"], encoder, tmp_path)
    assert embedding_cache_path(list(TEXTS), encoder, tmp_path) == base


def test_a_changed_model_gets_another_key(encoder, tmp_path):
    edited = copy.deepcopy(encoder)
    with torch.no_grad():
        next(edited.parameters()).view(-1)[12345] += 0.01  # one weight, not among the sampled ones
    assert embedding_cache_path(TEXTS, edited, tmp_path) != embedding_cache_path(TEXTS, encoder, tmp_path)


def test_default_folder_is_under_the_cache_root(encoder, tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path))
    path = embedding_cache_path(TEXTS, encoder)
    assert path.parent == tmp_path / "embeddings"
    embed_cached(TEXTS[:3], encoder)
    assert len(list((tmp_path / "embeddings").glob("*.npz"))) == 1


def _write_npz(path, **arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _good_key(path):
    with np.load(path, allow_pickle=False) as data:
        return data["key"]


def _stale(path, vectors):
    key = json.loads(str(_good_key(path)))
    key["model"] = "0" * 64
    _write_npz(path, key=np.array(json.dumps(key)), embeddings=vectors)


def _garbage(path, vectors):
    path.write_bytes(b"not a zip file at all")


def _truncated(path, vectors):
    path.write_bytes(path.read_bytes()[:300])


def _pickled_objects(path, vectors):
    # An object array can only be read back with allow_pickle=True: refused.
    _write_npz(path, key=_good_key(path), embeddings=np.array([{"a": 1}], dtype=object))


def _no_key(path, vectors):
    _write_npz(path, embeddings=vectors)


def _float64(path, vectors):
    _write_npz(path, key=_good_key(path), embeddings=vectors.astype(np.float64))


def _too_few_rows(path, vectors):
    _write_npz(path, key=_good_key(path), embeddings=vectors[:-1])


def _wrong_width(path, vectors):
    _write_npz(path, key=_good_key(path), embeddings=rh.l2_normalize(vectors[:, :100]))


def _nan(path, vectors):
    bad = vectors.copy()
    bad[3, 7] = np.nan
    _write_npz(path, key=_good_key(path), embeddings=bad)


def _not_unit(path, vectors):
    _write_npz(path, key=_good_key(path), embeddings=vectors * 2)


@pytest.mark.parametrize(
    "spoil, reason",
    [
        (_stale, "stale"),
        (_garbage, "unreadable"),
        (_truncated, "unreadable"),
        (_pickled_objects, "unreadable"),
        (_no_key, "unreadable"),
        (_float64, "wrong array"),
        (_too_few_rows, "wrong array"),
        (_wrong_width, "wrong dimension"),
        (_nan, "NaN"),
        (_not_unit, "not L2-normalized"),
    ],
)
def test_stale_or_corrupt_files_are_detected_and_rebuilt(
    spoil, reason, encoder, sample_embeddings, tmp_path, capsys
):
    embed_cached(TEXTS, encoder, tmp_path)
    path = embedding_cache_path(TEXTS, encoder, tmp_path)
    spoil(path, sample_embeddings)
    capsys.readouterr()

    vectors = embed_cached(TEXTS, encoder, tmp_path)

    np.testing.assert_array_equal(vectors, sample_embeddings)
    message = capsys.readouterr().err
    assert "unusable" in message and reason in message
    # The file was rewritten: the next call is a clean hit.
    embed_cached(TEXTS, encoder, tmp_path)
    assert capsys.readouterr().err == ""
    with np.load(path, allow_pickle=False) as data:
        np.testing.assert_array_equal(data["embeddings"], sample_embeddings)


def test_an_unusable_cache_folder_still_returns_the_embeddings(encoder, sample_embeddings, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    for folder in (blocker, blocker / "embeddings"):  # a file, and a folder that cannot be made
        vectors = embed_cached(TEXTS, encoder, folder)
        np.testing.assert_array_equal(vectors, sample_embeddings)
        message = capsys.readouterr().err
        assert message.count("\n") == 1 and "Embedding cache not used" in message
        assert str(blocker) in message and "RAG_CACHE_DIR" in message


def test_rows_permuted_under_the_same_key_are_caught(encoder, sample_embeddings, tmp_path, capsys):
    embed_cached(TEXTS, encoder, tmp_path)
    path = embedding_cache_path(TEXTS, encoder, tmp_path)
    with np.load(path, allow_pickle=False) as data:
        key, vectors = data["key"], data["embeddings"]
    np.savez(path, key=key, embeddings=vectors[::-1].copy())  # same key, rows swapped: still unit rows
    capsys.readouterr()
    np.testing.assert_array_equal(embed_cached(TEXTS, encoder, tmp_path), sample_embeddings)
    assert "do not match their checksum" in capsys.readouterr().err


def test_the_pipeline_says_where_its_embeddings_came_from(encoder, tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path))
    first = rh.RAGPipeline(TEXTS, encoder=encoder, cache_embeddings=True)
    second = rh.RAGPipeline(TEXTS, encoder=encoder, cache_embeddings=True)
    assert not first.embedding_cache.hit and second.embedding_cache.hit
    assert first.embedding_cache.path == second.embedding_cache.path
    assert str(second.embedding_cache).startswith("Embeddings loaded from the cache ")


@pytest.mark.parametrize("bad, error", [([], ValueError), ("one string", TypeError), (["ok", " "], ValueError)])
def test_bad_texts_are_refused_like_embed(bad, error, encoder, tmp_path):
    with pytest.raises(error):
        embed_cached(bad, encoder, tmp_path)
    assert not any(tmp_path.iterdir())


# ------------------------------------------ read-only caches and odd paths
def read_only(monkeypatch, folder):
    """Make ``folder`` read-only: chmod for a normal user, and ``os.access`` saying so for root too.

    (root writes through any mode bits, so chmod alone proves nothing when
    the tests run as root; the code asks ``os.access``, which is patched to
    answer as it would for another user.)
    """
    import os

    folder.chmod(0o555)
    real_access = os.access

    def access(path, mode, *args, **kwargs):
        if mode & os.W_OK and str(os.path.abspath(path)).startswith(str(folder)):
            return False
        return real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)


def test_a_valid_cache_in_a_read_only_folder_is_read(encoder, sample_embeddings, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "embeddings"
    embed_cached(TEXTS, encoder, folder)
    capsys.readouterr()
    try:
        read_only(monkeypatch, folder)
        monkeypatch.setattr(encoder, "encode", lambda *a, **k: pytest.fail("computed again: the cache was not read"))
        vectors, use = embed_cached(TEXTS, encoder, folder, report=True)
    finally:
        folder.chmod(0o755)
    np.testing.assert_array_equal(vectors, sample_embeddings)
    assert use.hit and capsys.readouterr().err == ""


def test_a_cache_path_that_is_a_folder_is_called_a_folder(encoder, sample_embeddings, tmp_path, capsys):
    path = embedding_cache_path(TEXTS, encoder, tmp_path)
    path.mkdir(parents=True)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second message about a failed write
        vectors = embed_cached(TEXTS, encoder, tmp_path)
    np.testing.assert_array_equal(vectors, sample_embeddings)
    err = capsys.readouterr().err
    assert "is a folder, not a cache file" in err and "missing" not in err and err.count("\n") == 1
    assert path.is_dir()  # left alone: it may be someone's


# ------------------------------------- the fast path's memory on long lists
def test_token_lengths_are_counted_a_block_at_a_time(encoder, monkeypatch):
    """Only the counts are kept: the token lists of 100,000 lines at once held 0.9 GiB (measured)."""
    from rag_helpers._infra import onnx_encoder

    texts = [f"text number {i} " + "word " * (i % 40) for i in range(50)]
    monkeypatch.setattr(onnx_encoder, "LENGTH_BLOCK", 8)
    sizes = []

    def counting(batch, **kwargs):
        sizes.append(len(batch))
        return encoder.tokenizer(batch, **kwargs)

    got = onnx_encoder.token_lengths(counting, texts, encoder.max_seq_length)
    window = encoder.max_seq_length
    expected = [len(ids) for ids in encoder.tokenizer(texts, truncation=True, max_length=window)["input_ids"]]
    assert got.tolist() == expected and max(sizes) == 8 and sum(sizes) == len(texts)
