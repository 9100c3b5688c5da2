"""5. Generation: load times, time to first token and tokens per second.

On the CPU: the packaged SmolLM2-135M-Instruct, the offline model.
* cold load: into an empty cache folder (``RAG_CACHE_DIR`` pointed at a
  temporary one), so the GGUF file is dequantized and saved afresh;
* warm load: the same call again, with the converted safetensors in place
  (what every later session pays);
* time to first token: ``generate`` with ``max_new_tokens=1`` on the planet
  prompt (chat template applied), i.e. reading the prompt plus one step;
* tokens per second: greedy, exactly N new tokens (``min_new_tokens=N``),
  ``(N - 1) / (t(N) - t(1))``, the decoding rate once the prompt is read.

On a GPU: the same for LiquidAI/LFM2-700M, when there is a GPU (and the model
can be had); otherwise the table says why it was not measured.

Batched against one at a time (issue 19, item 4), on the CPU, same run: the
same RAG prompts (labelled test questions of the Python-docs corpus, k=2
chunks each) answered by ``Generator.generate`` one after another and by
``Generator.generate_batch`` with batch sizes 1, 4, 8 and 16 (greedy,
``stop_repeats=False`` so that every way writes the same answers: checked),
the ways taking turns, medians of the repeats. Tokens: the answers' tokens
(re-tokenized text; the end-of-turn token not counted). Alone:
``python -m benchmarks generation`` (``--quick``: fewer, shorter answers).
"""
from __future__ import annotations

import os
import tempfile
import time

import rag_helpers as rh
from rag_helpers._infra.models import DEFAULT_GENERATOR_MODEL

from .common import Goal, Section, fmt_ms, measure, table

N_TOKENS = 64
QUICK_N_TOKENS = 16
BATCH_SIZES = (1, 4, 8, 16)
BATCH_PROMPTS, QUICK_BATCH_PROMPTS = 16, 8
BATCH_NEW_TOKENS, QUICK_BATCH_NEW_TOKENS = 64, 32
BATCH_REPEATS, QUICK_BATCH_REPEATS = 3, 1
PLANET_DOCS = [
    "Jupiter is the largest planet in our solar system.",
    "Venus is the second planet from the Sun and is the hottest.",
]


def _load(name: str, device: str) -> tuple[rh.Generator, float]:
    start = time.perf_counter()
    generator = rh.load_generator(name, device=device)
    return generator, time.perf_counter() - start


def _check_cache() -> None:
    from rag_helpers._infra.gguf_cache import ensure_converted
    from rag_helpers._infra.models import packaged_generator_gguf

    ensure_converted(packaged_generator_gguf())


def _decoding(generator: rh.Generator, n_tokens: int, repeats: int) -> dict[str, float]:
    """Median time to first token and decoding rate for the planet prompt."""
    import torch
    from transformers import GenerationConfig

    inputs = generator.encode(rh.build_prompt(rh.SAMPLE_QUESTION, PLANET_DOCS))
    defaults = generator.model.generation_config
    eos = defaults.eos_token_id
    pad = defaults.pad_token_id if defaults.pad_token_id is not None else (eos[0] if isinstance(eos, list) else eos)

    def generate(n: int):
        config = GenerationConfig(max_new_tokens=n, min_new_tokens=n, do_sample=False,
                                  eos_token_id=eos, pad_token_id=pad)
        with torch.inference_mode():
            out = generator.model.generate(**inputs, generation_config=config)
        if generator.device.startswith("cuda"):
            torch.cuda.synchronize()
        return out

    t = measure({"first": lambda: generate(1), "n": lambda: generate(n_tokens)}, repeats=repeats)
    answer_seconds = measure(
        {"answer": lambda: rh.generate_real_answer(rh.SAMPLE_QUESTION, PLANET_DOCS, generator)}, repeats=repeats
    )["answer"].median
    return {
        "prompt_tokens": int(inputs["input_ids"].shape[1]),
        "ttft": t["first"].median,
        "tokens_per_s": (n_tokens - 1) / max(t["n"].median - t["first"].median, 1e-9),
        "answer_s": answer_seconds,
        "answer": rh.generate_real_answer(rh.SAMPLE_QUESTION, PLANET_DOCS, generator),
    }


def run(quick: bool = False) -> Section:
    import torch

    n_tokens = QUICK_N_TOKENS if quick else N_TOKENS
    repeats = 3
    section = Section("5. Generation: load, time to first token, tokens per second")
    old_cache = os.environ.get("RAG_CACHE_DIR")
    with tempfile.TemporaryDirectory(prefix="rag-bench-cache-") as tmp:
        if not quick:
            os.environ["RAG_CACHE_DIR"] = tmp  # an empty cache: the GGUF is converted again
        try:
            generator, cold = _load(rh.PACKAGED_GENERATOR, "cpu")
            warm_times = [_load(rh.PACKAGED_GENERATOR, "cpu")[1] for _ in range(repeats)]
            check = measure({"check": _check_cache}, repeats=repeats)["check"].median
        finally:
            if old_cache is None:
                os.environ.pop("RAG_CACHE_DIR", None)
            else:
                os.environ["RAG_CACHE_DIR"] = old_cache
    warm = sorted(warm_times)[len(warm_times) // 2]
    cpu = _decoding(generator, n_tokens, repeats)
    print(f"  generation (CPU): cold {cold:.1f} s, warm {warm:.2f} s, first token {cpu['ttft'] * 1e3:.0f} ms, "
          f"{cpu['tokens_per_s']:.1f} tokens/s", flush=True)
    batched = _batched(generator, quick)
    del generator

    rows = [[
        "SmolLM2-135M-Instruct (packaged, fp32)", f"CPU, {torch.get_num_threads()} threads",
        f"{cold:.1f} s" + (" (--quick: the existing cache, not a fresh one)" if quick else ""),
        f"{warm:.2f} s", f"{cpu['prompt_tokens']}", fmt_ms(cpu["ttft"]), f"{cpu['tokens_per_s']:.1f}",
        f"{cpu['answer_s']:.2f} s",
    ]]
    gpu_note = _gpu_row(rows, n_tokens, repeats)
    section.tables.append(table(
        ["model", "device", "cold load", "warm load", "prompt tokens", "time to first token ms",
         "tokens / s", "whole answer"], rows))
    section.notes += [
        f"Greedy decoding; tokens / s over exactly {n_tokens} new tokens, after the first; "
        "\"whole answer\" is `generate_real_answer` on the planet question (stops at the end-of-answer token).",
        f"The offline model's answer: \"{cpu['answer']}\"",
        f"Warm load includes the cache check (SHA-256 of the GGUF source and of every converted file): "
        f"{check:.2f} s of it.",
        gpu_note,
    ]
    section.goals.append(Goal("warm load of the offline generator under 2 s (converted cache)",
                              f"{warm:.2f} s", warm < 2.0))
    section.goals.append(Goal("LFM2-700M on a GPU: time to first token and tokens / s", gpu_note,
                              None if "not measured" in gpu_note else True))
    section.tables.append(batched["table"])
    section.notes += batched["notes"]
    section.raw = {"cold_s": cold, "warm_s": warm, "cpu": cpu,
                   "batched": {k: v for k, v in batched.items() if k not in ("table", "notes")}}
    return section


def _rag_prompts(generator: rh.Generator, n: int) -> list[str]:
    """Prompts of the first ``n`` labelled test questions, with their 2 best chunks of the Python docs."""
    from rag_helpers.engine.corpus import load_labelled_questions
    from rag_helpers.engine.pipeline import RAGPipeline

    # The corpus embeddings are cached: later runs skip the minutes of embedding 1,861 chunks.
    pipe = RAGPipeline.from_corpus("python-docs", k=2, generator=generator, min_score=None, cache_embeddings=True)
    return [pipe.prepare(q.question).prompt for q in load_labelled_questions("test")[:n]]


def _batched(generator: rh.Generator, quick: bool) -> dict:
    """Answers/s and tokens/s of generate_batch (several batch sizes) against generate one at a time."""
    import statistics

    import torch

    n_prompts = QUICK_BATCH_PROMPTS if quick else BATCH_PROMPTS
    new_tokens = QUICK_BATCH_NEW_TOKENS if quick else BATCH_NEW_TOKENS
    repeats = QUICK_BATCH_REPEATS if quick else BATCH_REPEATS
    prompts = _rag_prompts(generator, n_prompts)
    prompt_tokens = [generator.count_tokens(p) for p in prompts]
    ways = {"one at a time (generate)": lambda: [generator.generate(p, new_tokens) for p in prompts]}
    for size in BATCH_SIZES:
        ways[f"generate_batch, batch {size}"] = (
            lambda size=size: generator.generate_batch(prompts, new_tokens, batch_size=size, stop_repeats=False))
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    answers: dict[str, list[str]] = {}
    for _ in range(repeats):  # the ways take turns: a slow minute on a shared machine hurts them all
        for name, way in ways.items():
            start = time.perf_counter()
            answers[name] = way()
            seconds[name].append(time.perf_counter() - start)
            print(f"  {name}: {seconds[name][-1]:.1f} s", flush=True)
    reference = answers["one at a time (generate)"]
    tokens = sum(len(generator.tokenizer(a, add_special_tokens=False)["input_ids"]) for a in reference)
    base = statistics.median(seconds["one at a time (generate)"])
    rows, raw = [], {}
    for name in ways:
        median = statistics.median(seconds[name])
        same = answers[name] == reference
        raw[name] = {"seconds": seconds[name], "median_s": median, "same_answers": same}
        rows.append([name, f"{median:.1f} s", f"{len(prompts) / median:.3g}", f"{tokens / median:.3g}",
                     f"{base / median:.2f}x", "yes" if same else "NO"])
    best = min(raw, key=lambda name: raw[name]["median_s"])
    answers_per_s = len(prompts) / raw[best]["median_s"]
    notes = [
        f"Batched against one at a time: {len(prompts)} RAG prompts (labelled test questions of the Python docs, "
        f"k=2 chunks; {min(prompt_tokens)} to {max(prompt_tokens)} prompt tokens, median "
        f"{statistics.median(prompt_tokens):.0f}), greedy, at most {new_tokens} new tokens, {tokens} answer tokens "
        f"in all; CPU, {torch.get_num_threads()} threads; median of {repeats} run(s), the ways taking turns.",
        f"Fastest: {best}, {answers_per_s:.3g} answers/s, {raw[best]['median_s'] / len(prompts):.2f} s an answer; "
        f"at that rate 87 questions x 6 conditions (522 answers of these lengths) take "
        f"{522 / answers_per_s / 60:.1f} min.",
        "llama.cpp (llama-cpp-python) on the same GGUF: not measured, no binary wheel of llama-cpp-python for this "
        "platform on the package index (`pip download --only-binary :all: llama-cpp-python`: no matching "
        "distribution); building it from source was not attempted.",
    ]
    header = ["way", "seconds", "answers / s", "tokens / s", "speed-up", "same answers"]
    return {"table": table(header, rows), "notes": notes, "ways": raw, "prompts": len(prompts),
            "new_tokens": new_tokens, "answer_tokens": tokens, "prompt_tokens": prompt_tokens,
            "answers_per_s_best": answers_per_s}


def _gpu_row(rows: list, n_tokens: int, repeats: int) -> str:
    import torch

    if not torch.cuda.is_available():
        rows.append(["LiquidAI/LFM2-700M", "GPU", "not measured", "not measured", "", "not measured",
                     "not measured", "not measured"])
        return ("LFM2-700M on a GPU: not measured, there is no GPU on this machine "
                "(`torch.cuda.is_available()` is False) and none was lent to this run.")
    try:
        generator, cold = _load(DEFAULT_GENERATOR_MODEL, "cuda")
        warm = _load(DEFAULT_GENERATOR_MODEL, "cuda")[1]
    except Exception as exc:  # offline and not cached, out of memory, ...
        rows.append(["LiquidAI/LFM2-700M", torch.cuda.get_device_name(0), "failed", "", "", "", "", ""])
        return f"LFM2-700M on a GPU: not measured, it could not be loaded ({type(exc).__name__}: {exc})."
    gpu = _decoding(generator, n_tokens, repeats)
    rows.append(["LiquidAI/LFM2-700M", f"{torch.cuda.get_device_name(0)}, {generator.dtype}",
                 f"{cold:.1f} s (from the Hub cache)", f"{warm:.2f} s", f"{gpu['prompt_tokens']}",
                 fmt_ms(gpu["ttft"]), f"{gpu['tokens_per_s']:.1f}", f"{gpu['answer_s']:.2f} s"])
    return f"LFM2-700M on {torch.cuda.get_device_name(0)}: measured (row above)."
