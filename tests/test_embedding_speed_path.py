"""The fast embedding path (ONNX Runtime): same vectors and rankings as encode, and every fallback.

The fast path runs the packaged all-MiniLM-L6-v2 exported to ONNX. These
tests use the real model on real English text (the standard library's
docstrings) and a cache folder of their own, so the user's cache is neither
read nor written. The tests that need ONNX Runtime are skipped without the
``fast`` extra; the ones that check the plain path without it always run.
"""
from __future__ import annotations

import importlib
import inspect
import json
import re
import shutil

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rag_helpers as rh
from rag_helpers._infra import onnx_encoder
from rag_helpers._infra.cache import file_id
from rag_helpers.embeddings import embed as taught_embed
from rag_helpers._infra.onnx_encoder import (
    VERIFY_MIN_COSINE,
    check_exported,
    ensure_exported,
    exported_dir,
    fast_encoder_for,
    token_budget_batches,
)
from rag_helpers._infra.models import packaged_encoder_path
from rag_helpers.engine.embeddings import _FAST_PATH_MIN_TEXTS

HAS_FAST_EXTRA = all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))
needs_fast_extra = pytest.mark.skipif(not HAS_FAST_EXTRA,
                                      reason="the `fast` extra (onnxruntime, onnx) is not installed")

QUERIES = [
    "How do I read a file line by line?",
    "Join path components into one path.",
    "What happens when a subprocess times out?",
    "Parse a JSON document into Python objects.",
    "Split a string with a regular expression.",
    "Copy a directory tree recursively.",
    "Count how often each item occurs.",
    "Round a number to a given precision.",
]
_MODULES = ["os", "os.path", "re", "json", "collections", "itertools", "functools", "pathlib", "shutil",
            "subprocess", "textwrap", "statistics", "math", "datetime", "random", "string"]


def docstring_chunks(n: int, encoder, max_tokens: int = 160) -> list[str]:
    """``n`` chunks of real English prose, 80-160 tokens: consecutive standard-library docstring paragraphs."""
    paragraphs: list[str] = []
    for module_name in _MODULES:
        module = importlib.import_module(module_name)
        for name in sorted(dir(module)):
            doc = "" if name.startswith("_") else inspect.getdoc(getattr(module, name, None)) or ""
            for paragraph in re.split(r"\n\s*\n", doc):
                text = " ".join(paragraph.split())
                if len(text) >= 60 and text[0].isupper() and ">>>" not in paragraph and text not in paragraphs:
                    paragraphs.append(text)
    chunks, current = [], []
    for paragraph in paragraphs:
        current.append(paragraph)
        n_tokens = len(encoder.tokenizer(" ".join(current), truncation=True, max_length=max_tokens + 1)["input_ids"])
        if n_tokens >= max_tokens // 2:
            if n_tokens <= max_tokens:  # a chunker's pieces fit the encoder's window
                chunks.append(" ".join(current))
            current = []
            if len(chunks) == n:
                return chunks
    raise AssertionError(f"only {len(chunks)} chunks in the docstrings of {_MODULES}")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """A cache folder of this module's own, through RAG_CACHE_DIR."""
    with pytest.MonkeyPatch.context() as mp:
        folder = tmp_path_factory.mktemp("rag-cache")
        mp.setenv("RAG_CACHE_DIR", str(folder))
        mp.delenv(onnx_encoder.FAST_EMBEDDING_ENV, raising=False)
        yield folder


@pytest.fixture(scope="module")
def own_encoder(cache_dir):
    """A packaged encoder of this module's own: what these tests do to its fast path stays here."""
    return rh.load_encoder(device="cpu")


@pytest.fixture(scope="module")
def chunks(own_encoder):
    return docstring_chunks(_FAST_PATH_MIN_TEXTS + 8, own_encoder)


@pytest.fixture(scope="module")
def plain_vectors(own_encoder, chunks):
    """The reference: notebook 01's embed (encode, then l2_normalize), unit rows."""
    return taught_embed(chunks, own_encoder)


@pytest.fixture
def fresh_encoder(cache_dir):
    """A newly loaded encoder, whose fast path is not prepared yet."""
    return rh.load_encoder(device="cpu")


def refuse_to_encode(encoder, monkeypatch):
    def no_encoding(*args, **kwargs):
        raise AssertionError("SentenceTransformer.encode was called: the fast path was not used")

    monkeypatch.setattr(encoder, "encode", no_encoding)


# ---------------------------------------------------------------- the fast path gives the same results


@needs_fast_extra
def test_fast_path_gives_encodes_vectors_and_rankings_on_real_text(own_encoder, chunks, plain_vectors, monkeypatch,
                                                                    capsys):
    assert fast_encoder_for(own_encoder) is not None, capsys.readouterr().err
    refuse_to_encode(own_encoder, monkeypatch)  # proves the numbers below come from ONNX Runtime
    vectors = rh.embed(chunks, own_encoder)
    monkeypatch.undo()
    assert vectors.dtype == np.float32 and vectors.shape == (len(chunks), 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosines = np.sum(vectors * plain_vectors, axis=1)
    assert cosines.min() >= 0.999, f"lowest cosine {cosines.min()} (chunk {cosines.argmin()})"
    queries = rh.embed(QUERIES, own_encoder)
    top_fast = np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :10]
    top_plain = np.argsort(-(queries @ plain_vectors.T), axis=1, kind="stable")[:, :10]
    np.testing.assert_array_equal(top_fast, top_plain)


@needs_fast_extra
def test_fast_path_keeps_order_and_duplicates(own_encoder, chunks, plain_vectors):
    # Sorted by length inside, so the output must be put back in the caller's order.
    order = np.random.default_rng(0).permutation(len(chunks))
    texts = [chunks[i] for i in order] + [chunks[0], chunks[0]]
    vectors = rh.embed(texts, own_encoder, show_progress_bar=True)
    expected = np.vstack([plain_vectors[order], plain_vectors[[0, 0]]])
    assert np.sum(vectors * expected, axis=1).min() >= 0.9999


@needs_fast_extra
def test_fast_path_truncates_like_encode_and_still_warns(own_encoder, chunks):
    long_text = " ".join(chunks[:6])  # well past the 256-token window
    texts = [long_text] + chunks[: _FAST_PATH_MIN_TEXTS]
    with pytest.warns(rh.LongDocumentWarning):
        vectors = rh.embed(texts, own_encoder)
    reference = own_encoder.encode([long_text], normalize_embeddings=True)[0]
    assert float(vectors[0] @ reference) >= 0.9999


def test_short_lists_stay_on_the_plain_path(own_encoder):
    # A notebook's few documents or a query: exactly the taught embed's numbers, whatever is installed.
    texts = rh.SAMPLE_DOCUMENTS
    assert len(texts) < _FAST_PATH_MIN_TEXTS
    np.testing.assert_array_equal(rh.embed(texts, own_encoder), taught_embed(texts, own_encoder))


# Texts for the property test: real prose of many lengths, the sample facts, and made-up strings
# (odd characters, numbers, repeats), alone or joined past the 256-token window.
_WORDS = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12)
_MADE_UP = st.lists(_WORDS, min_size=1, max_size=40).map(" ".join).filter(lambda s: s.strip())


@needs_fast_extra
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fast_path_gives_the_taught_embeds_vectors_and_top_k(own_encoder, chunks, data):
    """Property: on any list of texts the ONNX path gives notebook 01's embed's vectors and rankings."""
    fast = fast_encoder_for(own_encoder)
    assert fast is not None
    pool = st.sampled_from(list(chunks) + list(rh.SAMPLE_DOCUMENTS))
    one_text = st.one_of(pool, _MADE_UP, st.lists(pool, min_size=2, max_size=4).map(" ".join))
    texts = data.draw(st.lists(one_text, min_size=1, max_size=12), label="texts")
    batch_size = data.draw(st.integers(1, 32), label="batch_size")
    ours = fast.encode(texts, batch_size=batch_size)
    taught = taught_embed(texts, own_encoder)
    assert ours.shape == taught.shape and ours.dtype == np.float32
    np.testing.assert_allclose(ours, taught, atol=2e-5)
    # Same top-k for every query, wherever the taught scores are not a near-tie.
    k = min(3, len(texts))
    queries = taught_embed(QUERIES[:3], own_encoder)
    for q in queries:
        taught_scores, fast_scores = taught @ q, ours @ q
        order = np.argsort(-taught_scores, kind="stable")
        if k < len(texts) and taught_scores[order[k - 1]] - taught_scores[order[k]] < 1e-4:
            continue  # a near-tie at the cut: either side is right
        assert set(np.argsort(-fast_scores, kind="stable")[:k]) == set(order[:k])


# ---------------------------------------------------------------- the export and its cache


@needs_fast_extra
def test_export_is_cached_inside_the_cache_folder_with_a_manifest(own_encoder, cache_dir):
    fast_encoder_for(own_encoder)
    folder = exported_dir(packaged_encoder_path())
    assert folder.resolve().is_relative_to(cache_dir.resolve())
    manifest = json.loads((folder / "manifest.json").read_text())
    assert set(manifest["files"]) == {"encoder.onnx"}
    weights = packaged_encoder_path() / "model.safetensors"
    assert manifest["source"]["model.safetensors"]["size"] == weights.stat().st_size
    assert check_exported(folder, packaged_encoder_path()) is None


def _rewrite_manifest(folder, **changes):
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.update(changes)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _flip_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage, reason", [
    (lambda f: (f / "manifest.json").unlink(), "no manifest"),
    (lambda f: (f / "manifest.json").write_text("{"), "unreadable manifest"),
    (lambda f: _rewrite_manifest(f, files={}), "malformed manifest: 'files' is not a non-empty mapping of names"),
    (lambda f: _rewrite_manifest(f, files={"other.onnx": {"size": 1, "sha256": "0" * 64}}),
     "malformed manifest: encoder.onnx is not listed"),
    (lambda f: _rewrite_manifest(f, format=0), "older cache format"),
    (lambda f: _rewrite_manifest(f, source={"model.safetensors": {"size": 1, "sha256": "0" * 64}}),
     "made from another model"),
    (lambda f: (f / "encoder.onnx").unlink(), "encoder.onnx is missing"),
    (lambda f: (f / "encoder.onnx").write_bytes(b"shorter"), "encoder.onnx has the wrong size"),
    (lambda f: _flip_last_byte(f / "encoder.onnx"), "encoder.onnx does not match its checksum"),
])
def test_check_exported_names_what_is_wrong(tmp_path, damage, reason):
    model_dir = packaged_encoder_path()
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "encoder.onnx").write_bytes(b"stands for the exported network: only its checksum is read here")
    manifest = {"format": onnx_encoder._FORMAT, "source": onnx_encoder._source_id(model_dir),
                "files": {"encoder.onnx": file_id(folder / "encoder.onnx")}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert check_exported(folder, model_dir) is None
    damage(folder)
    assert check_exported(folder, model_dir) == reason


@needs_fast_extra
def test_a_corrupt_export_is_detected_and_exported_again(own_encoder, cache_dir, capsys):
    fast_encoder_for(own_encoder)
    model_dir = packaged_encoder_path()
    folder = exported_dir(model_dir)
    backup = cache_dir / "backup"
    shutil.copytree(folder, backup)
    try:
        with open(folder / "encoder.onnx", "r+b") as f:  # flip bytes in the middle of the weights
            f.seek(50_000_000)
            data = f.read(64)
            f.seek(50_000_000)
            f.write(bytes(b ^ 0xFF for b in data))
        assert check_exported(folder, model_dir) == "encoder.onnx does not match its checksum"
        capsys.readouterr()
        assert ensure_exported(model_dir) == folder
        assert "unusable (encoder.onnx does not match its checksum); exporting again" in capsys.readouterr().err
        assert check_exported(folder, model_dir) is None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(backup, folder)
        shutil.rmtree(backup)


@needs_fast_extra
def test_an_export_that_disagrees_with_the_model_is_not_used(fresh_encoder, chunks, plain_vectors, cache_dir,
                                                            capsys):
    """An export whose checksums are right but whose numbers are wrong: the verification catches it."""
    import onnx
    from onnx import numpy_helper

    model_dir = packaged_encoder_path()
    folder = exported_dir(model_dir)
    ensure_exported(model_dir)
    backup = cache_dir / "backup"
    shutil.copytree(folder, backup)
    try:
        model = onnx.load(str(folder / "encoder.onnx"))
        # The largest weight is the word embeddings: give every token another token's vector.
        weight = max(model.graph.initializer, key=lambda t: int(np.prod(t.dims)))
        weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight)[::-1].copy(), weight.name))
        onnx.save(model, str(folder / "encoder.onnx"))
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest["files"]["encoder.onnx"] = file_id(folder / "encoder.onnx")
        (folder / "manifest.json").write_text(json.dumps(manifest))
        assert check_exported(folder, model_dir) is None  # the cache looks fine...
        capsys.readouterr()
        vectors = rh.embed(chunks, fresh_encoder)  # ...but its numbers are not the model's
        err = capsys.readouterr().err
        assert "Fast embedding path off: the ONNX export disagrees with the PyTorch encoder" in err
        assert len(err.strip().splitlines()) == 1
        np.testing.assert_allclose(vectors, plain_vectors, atol=1e-6)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(backup, folder)
        shutil.rmtree(backup)


# ---------------------------------------------------------------- fallbacks: plain encode, one line


def test_without_the_extra_embed_is_plain_encode_and_silent(fresh_encoder, chunks, plain_vectors, monkeypatch,
                                                            capsys):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(onnx_encoder.importlib.util, "find_spec",
                        lambda name, *a: None if name in ("onnxruntime", "onnx") else real_find_spec(name, *a))
    assert not onnx_encoder.fast_path_available()
    assert fast_encoder_for(fresh_encoder) is None
    vectors = rh.embed(chunks, fresh_encoder)
    np.testing.assert_array_equal(vectors, taught_embed(chunks, fresh_encoder))  # the taught path, exactly
    assert capsys.readouterr().err == ""  # not installed is the default, not a failure


def test_turned_off_by_the_environment(fresh_encoder, monkeypatch):
    monkeypatch.setenv(onnx_encoder.FAST_EMBEDDING_ENV, "0")
    assert fast_encoder_for(fresh_encoder) is None


def test_encoders_not_loaded_from_the_packaged_model_never_take_the_fast_path(own_encoder):
    from sentence_transformers import SentenceTransformer

    other = SentenceTransformer(str(packaged_encoder_path()), device="cpu")  # not through load_encoder
    assert fast_encoder_for(other) is None


@needs_fast_extra
def test_a_failing_export_falls_back_with_one_line(fresh_encoder, chunks, plain_vectors, monkeypatch, capsys):
    monkeypatch.setattr(onnx_encoder, "exported_dir", lambda model_dir: onnx_encoder.cache_root() / "elsewhere")

    def broken_export(model_dir, folder):
        raise RuntimeError("the exporter does not know this model\nsecond line")

    monkeypatch.setattr(onnx_encoder, "_export", broken_export)
    vectors = rh.embed(chunks, fresh_encoder)
    err_lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert err_lines[-1] == ("Fast embedding path unavailable (RuntimeError: the exporter does not know this model); "
                             "using SentenceTransformer.encode.")
    np.testing.assert_allclose(vectors, plain_vectors, atol=1e-6)
    rh.embed(chunks, fresh_encoder)  # not tried again for this encoder
    assert capsys.readouterr().err == ""


@needs_fast_extra
def test_a_failing_run_falls_back_with_one_line(fresh_encoder, chunks, plain_vectors, monkeypatch, capsys):
    fast = fast_encoder_for(fresh_encoder)
    assert fast is not None

    class BrokenSession:
        def run(self, *args):
            raise RuntimeError("onnxruntime ran out of memory")

    monkeypatch.setattr(fast, "session", BrokenSession())
    capsys.readouterr()
    vectors = rh.embed(chunks, fresh_encoder)
    assert capsys.readouterr().err == ("Fast embedding path off (RuntimeError: onnxruntime ran out of memory); "
                                       "using SentenceTransformer.encode.\n")
    np.testing.assert_allclose(vectors, plain_vectors, atol=1e-6)
    assert fast_encoder_for(fresh_encoder) is None


@needs_fast_extra
def test_weights_changed_after_verification_turn_the_fast_path_off(fresh_encoder, capsys):
    assert fast_encoder_for(fresh_encoder) is not None
    with torch.no_grad():
        next(fresh_encoder.parameters()).view(-1)[0] += 0.5
    assert fast_encoder_for(fresh_encoder) is None
    assert "weights changed" in capsys.readouterr().err


@needs_fast_extra
def test_the_export_meets_its_verification_bar_on_real_text(own_encoder, chunks, plain_vectors):
    """The bar the export must pass when loaded (VERIFY_MIN_COSINE), measured on every chunk, not only
    on the few fixed sentences of the load-time check; and a wrong export fails it."""
    fast = fast_encoder_for(own_encoder)
    assert fast.verify() >= VERIFY_MIN_COSINE
    cosines = np.sum(fast.encode(chunks) * plain_vectors, axis=1)
    assert cosines.min() >= VERIFY_MIN_COSINE, f"chunk {cosines.argmin()}: cosine {cosines.min()}"
    # The bar is tight enough to refuse a slightly wrong network: 5% noise on its token vectors.
    sentences = list(onnx_encoder._VERIFY_SENTENCES)
    feed, mask = fast._inputs(sentences)
    tokens = fast.session.run(None, feed)[0]  # (batch, seq, 384) float32
    noisy = tokens * (1 + 0.05 * np.random.default_rng(0).standard_normal(tokens.shape).astype(np.float32))
    worst = np.min(np.sum(onnx_encoder._mean_pool(noisy, mask) * taught_embed(sentences, own_encoder), axis=1))
    assert worst < VERIFY_MIN_COSINE


# ---------------------------------------------------------------- batching by token budget


@given(
    lengths=st.lists(st.integers(min_value=1, max_value=300), min_size=0, max_size=200),
    batch_size=st.integers(min_value=1, max_value=64),
    budget=st.integers(min_value=1, max_value=1024),
)
def test_token_budget_batches_cover_every_text_once_within_budget(lengths, batch_size, budget):
    batches = token_budget_batches(lengths, batch_size, budget)
    flat = np.concatenate(batches) if batches else np.array([], dtype=int)
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    longest_so_far = np.inf
    for batch in batches:
        sizes = [lengths[i] for i in batch]
        assert 1 <= len(batch) <= batch_size
        assert len(batch) == 1 or len(batch) * max(sizes) <= budget
        assert sizes == sorted(sizes, reverse=True) and max(sizes) <= longest_so_far  # longest first
        longest_so_far = min(sizes)


def test_token_budget_batches_example():
    batches = token_budget_batches([10, 200, 50, 120, 10], batch_size=32, budget=256)
    assert [b.tolist() for b in batches] == [[1], [3, 2], [0, 4]]


def test_a_bad_batch_size_is_refused_by_name(own_encoder):
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        rh.embed(["a text"], own_encoder, batch_size=0)
