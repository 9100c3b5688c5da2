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
    section.raw = {"cold_s": cold, "warm_s": warm, "cpu": cpu}
    return section


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
