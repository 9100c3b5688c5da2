"""Step 6 of the pipeline: the language model that writes the answer (notebook 06).

``load_generator`` gives a ``Generator``: a model with its tokenizer. It
writes from any prompt, all at once (``generate``) or piece by piece as the
words come (``stream``). Greedy decoding is the default: the same answer on
every run, token for token the answer of notebook 06's hand-written loop
(``rag_helpers.generation.greedy_decode``; tested). Building the prompt is
not this module's job: ``generate_real_answer`` (prompt, then generate) is
assembled in ``engine/pipeline.py``.

Where models come from (the Hub, the packaged offline copy, the fallback
rule) is infrastructure, in ``_infra/generator_loading.py``.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import torch
from transformers import GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase, TextIteratorStreamer

from .._infra.devices import pick_device
from .._infra.generator_loading import resolve_and_load
from .._infra.models import PACKAGED_GENERATOR
from .._infra.validation import check_positive_int

__all__ = [
    "Generator",
    "Sampling",
    "load_generator",
    "DEFAULT_MAX_NEW_TOKENS",
]

DEFAULT_MAX_NEW_TOKENS = 128
# Where a model card's context window differs from what the config reports
# (LFM2's config says 128,000 positions; the card gives 32,768 tokens).
KNOWN_CONTEXT_WINDOWS = {"LiquidAI/LFM2-700M": 32_768}
# Tokenizers that do not know their window report this huge placeholder.
_UNKNOWN_MAX_LENGTH = 10**9
# Prompts whose token ids are kept: fitting documents counts a prompt, then
# generating reads the same one, so it is tokenized once.
_ENCODED_PROMPTS_KEPT = 4


@dataclass(frozen=True)
class Sampling:
    """How the next token is chosen: greedy unless ``do_sample``.

    ``do_sample=True`` draws from the model's distribution sharpened by
    ``temperature`` (lower: more predictable), optionally cut by ``top_p``
    (nucleus) or ``min_p`` and discouraged from repeating by
    ``repetition_penalty``; ``seed`` makes a draw repeatable.
    """

    do_sample: bool = False
    temperature: float = 0.3
    top_p: float | None = None
    min_p: float | None = None
    repetition_penalty: float | None = None
    seed: int | None = None


@dataclass
class Generator:
    """A loaded language model with its tokenizer, and where it came from."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    name: str
    device: str
    source: str
    _encoded: OrderedDict = field(default_factory=OrderedDict, repr=False, compare=False)

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

    def encode(self, prompt: str) -> dict[str, torch.Tensor]:
        """Token ids of ``prompt`` as the model reads it, on the model's device.

        The prompt is wrapped in the model's chat template (one user turn,
        then the opening of the assistant's turn) when it has one.
        """
        if prompt in self._encoded:
            return self._encoded[prompt]
        if self.tokenizer.chat_template:
            # One user turn, as notebook 05's chat_messages(prompt) writes it.
            messages = [{"role": "user", "content": prompt}]
            encoded = self.tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
        else:
            encoded = self.tokenizer(prompt, return_tensors="pt")
        inputs = {key: value.to(self.model.device) for key, value in encoded.items()}
        self._encoded[prompt] = inputs
        while len(self._encoded) > _ENCODED_PROMPTS_KEPT:
            self._encoded.popitem(last=False)
        return inputs

    def count_tokens(self, prompt: str) -> int:
        """Tokens the model reads for ``prompt``, chat template included."""
        return int(self.encode(prompt)["input_ids"].shape[1])

    def generate(self, prompt: str, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, **sampling) -> str:
        """The model's answer to ``prompt``, at most ``max_new_tokens`` tokens.

        ``sampling``: the fields of ``Sampling`` (greedy by default). Raises
        ``ValueError`` if prompt and answer would not fit in the context
        window: nothing is cut silently.
        """
        inputs, config, seed = self._prepare(prompt, max_new_tokens, Sampling(**sampling))
        if seed is not None:
            torch.manual_seed(seed)
        with torch.inference_mode():
            output = self.model.generate(**inputs, generation_config=config)
        new_tokens = output[0, inputs["input_ids"].shape[1] :]
        return self.tokenizer.decode(new_tokens, skip_special_tokens=True).strip()

    def stream(self, prompt: str, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, **sampling) -> Iterator[str]:
        """Like ``generate``, but yields the answer piece by piece as it is written.

        ``model.generate`` runs in a background thread and pushes decoded text
        into a ``TextIteratorStreamer``, which this generator reads from.
        """
        inputs, config, seed = self._prepare(prompt, max_new_tokens, Sampling(**sampling))
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        failure: list[BaseException] = []

        def run() -> None:
            try:
                if seed is not None:
                    torch.manual_seed(seed)
                with torch.inference_mode():
                    self.model.generate(**inputs, generation_config=config, streamer=streamer)
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

    def _prepare(
        self, prompt: str, max_new_tokens: int, sampling: Sampling
    ) -> tuple[dict[str, torch.Tensor], GenerationConfig, int | None]:
        """The model's inputs and a generation config, after checking both fit the window."""
        max_new_tokens = check_positive_int(max_new_tokens, "max_new_tokens")
        inputs = self.encode(prompt)
        n_prompt = int(inputs["input_ids"].shape[1])
        if n_prompt + max_new_tokens > self.context_window:
            raise ValueError(
                f"the prompt is {n_prompt} tokens and max_new_tokens is {max_new_tokens}: together "
                f"more than {self.display_name}'s context window of {self.context_window} tokens. "
                "Retrieve fewer or shorter documents (smaller k), or keep those that fit "
                "with fit_documents (notebook 05)."
            )
        options = asdict(sampling)
        seed = options.pop("seed")
        if not options["do_sample"]:  # greedy: the sampling knobs mean nothing
            options = {"do_sample": False}
        defaults = self.model.generation_config
        eos = defaults.eos_token_id
        pad = defaults.pad_token_id if defaults.pad_token_id is not None else self.tokenizer.pad_token_id
        if pad is None:
            pad = eos[0] if isinstance(eos, list) else eos
        # A fresh config, not the model's: a model's own defaults may switch on
        # sampling, and the course wants greedy (reproducible) unless asked.
        config = GenerationConfig(
            max_new_tokens=max_new_tokens,
            eos_token_id=eos,
            pad_token_id=pad,
            bos_token_id=defaults.bos_token_id,
            **{k: v for k, v in options.items() if v is not None},
        )
        return inputs, config, seed



def load_generator(model_name: str | None = None, device: str | None = None) -> Generator:
    """Load the answer-writing language model.

    Parameters
    ----------
    model_name : a Hub id, a local folder, or ``rag_helpers.PACKAGED_GENERATOR``.
        ``None`` means ``$RAG_GENERATOR_MODEL``, else LiquidAI/LFM2-700M.
    device : "cpu", "cuda", "mps" or None for the best available.

    The default model falls back to the packaged SmolLM2-135M-Instruct when it
    cannot be had (no network and not cached), with one line saying so. A
    model named explicitly never falls back: it loads or raises
    ``ModelLoadError``.
    """
    device = pick_device(device)
    model, tokenizer, name, source = resolve_and_load(model_name, device)
    return Generator(model=model, tokenizer=tokenizer, name=name, device=device, source=source)
