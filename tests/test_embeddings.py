"""embeddings.py: the real packaged all-MiniLM-L6-v2, embed, and loading errors."""
from __future__ import annotations

import hashlib
import warnings

import numpy as np
import pytest

import rag_helpers as rh
from rag_helpers._infra.models import packaged_encoder_path
from conftest import JUPITER, VENUS


HUB_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

def test_packaged_encoder_is_the_real_model():
    weights = packaged_encoder_path() / "model.safetensors"
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == HUB_WEIGHTS_SHA256

def test_embeddings_are_unit_float32_rows(sample_embeddings):
    assert sample_embeddings.shape == (len(rh.SAMPLE_DOCUMENTS), 384)
    assert sample_embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(sample_embeddings, axis=1), 1.0, atol=1e-6)

def test_embedding_is_deterministic_and_batch_independent(encoder, sample_embeddings):
    one_by_one = np.vstack([rh.embed([doc], encoder) for doc in rh.SAMPLE_DOCUMENTS[:3]])
    np.testing.assert_allclose(one_by_one, sample_embeddings[:3], atol=1e-5)

def test_long_documents_warn_instead_of_being_cut_silently(encoder):
    long_text = "Jupiter is a gas giant. " * 200  # ~1200 tokens > 256
    with pytest.warns(rh.LongDocumentWarning, match="256-token window"):
        vectors = rh.embed(["short text", long_text], encoder)
    assert vectors.shape == (2, 384)

def test_short_documents_do_not_warn(encoder):
    with warnings.catch_warnings():
        warnings.simplefilter("error", rh.LongDocumentWarning)
        rh.embed(["a" * 240, "word " * 40], encoder)

@pytest.mark.parametrize(
    "texts, error, message",
    [
        ([], ValueError, "texts is empty"),
        ("just one string", TypeError, "list of strings, not a single str"),
        (["ok", 3], TypeError, r"texts\[1\] is a int"),
        (["ok", None], TypeError, r"texts\[1\] is a NoneType"),
        (["ok", "   "], ValueError, r"texts\[1\] is empty"),
        (42, TypeError, "list of strings"),
    ],
)
def test_embed_refuses_bad_texts(encoder, texts, error, message):
    with pytest.raises(error, match=message):
        rh.embed(texts, encoder)

def test_named_embedding_model_that_is_not_available_fails_clearly(monkeypatch):
    with pytest.raises(rh.ModelLoadError, match="no-such-org/no-such-model"):
        rh.load_encoder("no-such-org/no-such-model")
    monkeypatch.setenv("RAG_EMBEDDING_MODEL", "no-such-org/other-model")
    with pytest.raises(rh.ModelLoadError, match="other-model"):
        rh.load_encoder()

def test_the_hub_name_of_the_default_model_uses_the_packaged_copy(sample_embeddings):
    encoder = rh.load_encoder("sentence-transformers/all-MiniLM-L6-v2", device="cpu")
    np.testing.assert_allclose(rh.embed(rh.SAMPLE_DOCUMENTS, encoder), sample_embeddings, atol=1e-6)

def test_asking_for_a_missing_gpu_is_a_clear_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError, match="no CUDA GPU"):
        rh.load_encoder(device="cuda")


def test_load_encoder_loads_through_the_taught_function(monkeypatch):
    # rh.load_encoder resolves the name to the packaged folder, then calls notebook 01's load_encoder.
    from rag_helpers.engine import embeddings as engine

    calls = []
    real = engine.taught_load_encoder
    monkeypatch.setattr(engine, "taught_load_encoder",
                        lambda source, device=None: calls.append(source) or real(source, device=device))
    encoder = rh.load_encoder(device="cpu")
    assert calls == [str(packaged_encoder_path())]
    from rag_helpers.embeddings import embed as taught_embed

    np.testing.assert_array_equal(rh.embed([JUPITER, VENUS], encoder), taught_embed([JUPITER, VENUS], encoder))


def test_a_zero_vector_from_the_model_is_an_error_naming_its_row(encoder, monkeypatch):
    real = encoder.encode

    def encode_with_a_dead_row(texts, **kwargs):
        vectors = real(texts, **kwargs)
        vectors[1] = 0.0
        return vectors

    monkeypatch.setattr(encoder, "encode", encode_with_a_dead_row)
    with pytest.raises(ValueError, match=r"embeddings in row\(s\) 1 is not L2-normalized"):
        rh.embed([JUPITER, VENUS, "a third text"], encoder)
