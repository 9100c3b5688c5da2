"""Step 6 of the pipeline: the language model that writes the answer (notebook 06).

``load_generator`` gives a ``Generator``: a model with its tokenizer. It
writes from any prompt, all at once (``generate``), piece by piece as the
words come (``stream``), or for many prompts at once, batched
(``generate_batch``, for evaluation runs). Greedy decoding is the default:
the same answer on every run, token for token the answer of notebook 06's
hand-written loop (``rag_helpers.generation.greedy_decode``; tested).

``stop_repeats=True`` ends a sequence caught in a repetition loop (the same
few tokens over and over, as "::" forty times) and drops the repeated copies
from the text returned: see ``loop_tail`` for the rule. Building the prompt is
not this module's job: ``generate_real_answer`` (prompt, then generate) is
assembled in ``engine/pipeline.py``.

Where models come from (the Hub, the packaged offline copy, the fallback
rule) is infrastructure, in ``_infra/generator_loading.py``.
"""
from __future__ import annotations

import atexit
import math
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field

import torch
from transformers import (
    GenerationConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    StoppingCriteria,
    StoppingCriteriaList,
    TextIteratorStreamer,
)

from .._infra.devices import pick_device
from .._infra.generator_loading import resolve_and_load
from .._infra.models import PACKAGED_GENERATOR
from .._infra.validation import check_positive_int

__all__ = [
    "Generator",
    "Sampling",
    "load_generator",
    "DEFAULT_MAX_NEW_TOKENS",
    "DEFAULT_BATCH_SIZE",
    "REPEAT_MAX_PERIOD",
    "REPEAT_MIN_COPIES",
    "REPEAT_MIN_SPAN",
    "loop_tail",
    "ends_in_loop",
    "StopOnRepetitionLoop",
    "StopOnEvent",
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
# Prompts per forward pass in generate_batch. On a 2-core CPU the gain flattens
# past 8 (benchmarks/generation.py measures 1, 4, 8 and 16); longer batches
# also wait longer for their slowest answer.
DEFAULT_BATCH_SIZE = 8

# ----------------------------------------------------------- repetition loops
# A sequence is in a loop when its last tokens are one unit of p tokens
# (1 <= p <= REPEAT_MAX_PERIOD) written back to back at least
# max(REPEAT_MIN_COPIES, ceil(REPEAT_MIN_SPAN / p)) times.
#: The longest repeated unit looked for: a repeated sentence or line of up to
#: 48 tokens (most answer sentences of the packaged model are 10 to 30 tokens).
REPEAT_MAX_PERIOD = 48
#: Copies needed for a long unit. Two copies in a row occur in ordinary text (a
#: word doubled for emphasis, a heading repeated once); three identical
#: sentences in a row practically never do.
REPEAT_MIN_COPIES = 3
#: Tokens the repeated tail must cover, so a short unit needs more copies: a
#: run of one token must be 32 long, a 2-token unit such as " ::" 16 copies.
#: Measured on the 225,339 tokens of the shipped Python-docs corpus (prose and
#: code): with 16, nine places stop ("^^^^" underlines, '""""', "abc, abc,
#: ..." eight times, runs of zeros, 0.1 in binary); with 32 one place does (0.1
#: in binary, "0011" repeated eight times). A loop caught later costs only
#: those few tokens more: the copies are trimmed from the answer either way.
REPEAT_MIN_SPAN = 32


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
        inputs = {key: value.to(self.model.device) for key, value in self._tokenize(prompt).items()}
        self._encoded[prompt] = inputs
        while len(self._encoded) > _ENCODED_PROMPTS_KEPT:
            self._encoded.popitem(last=False)
        return inputs

    def _tokenize(self, prompt: str) -> dict[str, torch.Tensor]:
        """``input_ids`` and ``attention_mask``, (1, n) int64 on the CPU, of ``prompt`` in the chat template."""
        if self.tokenizer.chat_template:
            # One user turn, as notebook 05's chat_messages(prompt) writes it.
            messages = [{"role": "user", "content": prompt}]
            return self.tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
        return self.tokenizer(prompt, return_tensors="pt")

    def count_tokens(self, prompt: str) -> int:
        """Tokens the model reads for ``prompt``, chat template included."""
        return int(self.encode(prompt)["input_ids"].shape[1])

    def generate(
        self, prompt: str, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, *, stop_repeats: bool = False, **sampling
    ) -> str:
        """The model's answer to ``prompt``, at most ``max_new_tokens`` tokens.

        ``sampling``: the fields of ``Sampling`` (greedy by default). Raises
        ``ValueError`` if prompt and answer would not fit in the context
        window: nothing is cut silently. ``stop_repeats=True`` stops a
        repetition loop and returns the text with one copy of the repeated
        unit (off by default: the answer stays notebook 06's greedy loop's).
        """
        inputs, config, seed = self._prepare(prompt, max_new_tokens, Sampling(**sampling))
        n_prompt = int(inputs["input_ids"].shape[1])
        criteria = StoppingCriteriaList([StopOnRepetitionLoop(n_prompt)] if stop_repeats else [])
        if seed is not None:
            torch.manual_seed(seed)
        with torch.inference_mode():
            output = self.model.generate(**inputs, generation_config=config, stopping_criteria=criteria)
        return self._answer_text(output[0, n_prompt:].tolist(), stop_repeats)

    def stream(
        self, prompt: str, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, *, stop_repeats: bool = False, **sampling
    ) -> Iterator[str]:
        """Like ``generate``, but yields the answer piece by piece as it is written.

        ``model.generate`` runs in a background thread and pushes decoded text
        into a ``TextIteratorStreamer``, which this generator reads from.
        However the reader stops (the answer is complete, the caller closes
        the generator or stops iterating, Ctrl-C), the background ``generate``
        is told to stop after its current step and is waited for: a thread
        left running inside torch when Python exits aborts the process
        ("terminate called without an active exception", exit 134).
        Consumers that may stop early should close the generator
        (``contextlib.closing``) rather than rely on garbage collection; a
        hook at interpreter exit stops any thread left over all the same.

        ``stop_repeats=True`` stops a repetition loop; the copies written
        before the loop was recognised (at most ``max(REPEAT_MIN_SPAN,
        REPEAT_MAX_PERIOD * REPEAT_MIN_COPIES)`` tokens) have already been
        yielded and stay.
        """
        inputs, config, seed = self._prepare(prompt, max_new_tokens, Sampling(**sampling))
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        stop = threading.Event()
        criteria = [StopOnEvent(stop)]
        if stop_repeats:
            criteria.append(StopOnRepetitionLoop(int(inputs["input_ids"].shape[1])))
        failure: list[BaseException] = []

        def run() -> None:
            try:
                if seed is not None:
                    torch.manual_seed(seed)
                with torch.inference_mode():
                    self.model.generate(
                        **inputs, generation_config=config, streamer=streamer,
                        stopping_criteria=StoppingCriteriaList(criteria),
                    )
            except BaseException as exc:  # hand it to the reading thread
                failure.append(exc)
                streamer.end()  # otherwise the reader would wait forever

        thread = threading.Thread(target=run, daemon=True, name="rag-helpers-stream")
        _running_streams[thread] = stop
        thread.start()
        try:
            for piece in streamer:
                if piece:  # the streamer sometimes hands over an empty string between words
                    yield piece
        finally:
            # Normal end, an early close (GeneratorExit) or an exception such as
            # KeyboardInterrupt raised while waiting for the next piece: in every
            # case stop generate (it checks the event once per token) and wait.
            stop.set()
            thread.join()
            _running_streams.pop(thread, None)
        if failure:
            raise failure[0]

    def generate_batch(
        self,
        prompts: Sequence[str],
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        stop_repeats: bool = True,
        progress: bool = False,
    ) -> list[str]:
        """Greedy answers to many prompts, several per forward pass: ``answers[i]`` is for ``prompts[i]``.

        For evaluation runs. Each prompt is wrapped in the chat template as
        ``encode`` does; prompts are sorted by length so that a batch pads
        little, padded on the left (the answers all start in the same
        column; the attention mask hides the padding and positions are
        counted from each prompt's first real token), and each sequence stops
        at its own end of turn. With ``stop_repeats=False`` every answer is
        ``generate(prompt, max_new_tokens)``'s (tested on the packaged model).

        ``stop_repeats`` is on by default here, unlike ``generate``: in a
        batch, one answer caught in a loop keeps the whole batch decoding to
        ``max_new_tokens``, and a looping answer is garbage to score anyway.
        ``progress=True`` shows a progress bar with the time left.

        Raises ``ValueError`` naming the first prompt (by index) that would
        not fit the context window with ``max_new_tokens``, before any
        generation starts.
        """
        if isinstance(prompts, str) or not isinstance(prompts, Sequence):
            raise TypeError(f"prompts must be a list of strings, not {type(prompts).__name__}")
        for i, prompt in enumerate(prompts):
            if not isinstance(prompt, str):
                raise TypeError(f"prompts[{i}] must be a string, not {type(prompt).__name__}")
        max_new_tokens = check_positive_int(max_new_tokens, "max_new_tokens")
        batch_size = check_positive_int(batch_size, "batch_size")
        ids = [self._tokenize(prompt)["input_ids"][0].tolist() for prompt in prompts]
        for i, prompt_ids in enumerate(ids):
            self._check_window(len(prompt_ids), max_new_tokens, where=f"prompts[{i}]: ")
        config = self._config(max_new_tokens, Sampling())
        pad = config.pad_token_id
        order = sorted(range(len(prompts)), key=lambda i: len(ids[i]))
        answers: list[str] = [""] * len(prompts)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(prompts), desc="generating", unit="answer")
        try:
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                width = max(len(ids[i]) for i in batch)
                # Left padding: the pad id where the attention mask is 0. transformers
                # derives position ids from the mask, so each prompt's tokens sit at
                # the positions they have alone.
                input_ids = torch.tensor([[pad] * (width - len(ids[i])) + ids[i] for i in batch])
                mask = torch.tensor([[0] * (width - len(ids[i])) + [1] * len(ids[i]) for i in batch])
                criteria = StoppingCriteriaList([StopOnRepetitionLoop(width)] if stop_repeats else [])
                with torch.inference_mode():
                    output = self.model.generate(
                        input_ids=input_ids.to(self.model.device),
                        attention_mask=mask.to(self.model.device),
                        generation_config=config,
                        stopping_criteria=criteria,
                    )
                ends = self._end_ids() | {config.pad_token_id}  # a finished row is padded to the batch's end
                for row, i in enumerate(batch):
                    new_ids = output[row, width:].tolist()
                    cut = next((n for n, token in enumerate(new_ids) if token in ends), len(new_ids))
                    answers[i] = self._answer_text(new_ids[:cut], stop_repeats)
                if bar is not None:
                    bar.update(len(batch))
        finally:
            if bar is not None:
                bar.close()
        return answers

    def _end_ids(self) -> set[int]:
        """The token ids that end the model's turn."""
        eos = self.model.generation_config.eos_token_id
        return set(eos) if isinstance(eos, list) else {eos}

    def _answer_text(self, new_ids: list[int], stop_repeats: bool) -> str:
        """The text of the generated ids, without a repeated tail if ``stop_repeats``."""
        if stop_repeats:
            content = new_ids[:-1] if new_ids and new_ids[-1] in self._end_ids() else new_ids
            period, span = loop_tail(content)
            if span:  # keep one copy of the repeated unit
                new_ids = content[: len(content) - span + period]
        return self.tokenizer.decode(new_ids, skip_special_tokens=True).strip()

    def _check_window(self, n_prompt: int, max_new_tokens: int, where: str = "") -> None:
        if n_prompt + max_new_tokens > self.context_window:
            raise ValueError(
                f"{where}the prompt is {n_prompt} tokens and max_new_tokens is {max_new_tokens}: together "
                f"more than {self.display_name}'s context window of {self.context_window} tokens. "
                "Retrieve fewer or shorter documents (smaller k), or keep those that fit "
                "with fit_documents (notebook 05)."
            )

    def _prepare(
        self, prompt: str, max_new_tokens: int, sampling: Sampling
    ) -> tuple[dict[str, torch.Tensor], GenerationConfig, int | None]:
        """The model's inputs and a generation config, after checking both fit the window."""
        max_new_tokens = check_positive_int(max_new_tokens, "max_new_tokens")
        inputs = self.encode(prompt)
        self._check_window(int(inputs["input_ids"].shape[1]), max_new_tokens)
        config = self._config(max_new_tokens, sampling)
        return inputs, config, sampling.seed

    def _config(self, max_new_tokens: int, sampling: Sampling) -> GenerationConfig:
        """A generation config for ``sampling`` (greedy by default), with the model's special tokens."""
        options = asdict(sampling)
        options.pop("seed")  # not a generate option: the caller seeds torch
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
        return config


# ----------------------------------------------------------- stopping rules
def loop_tail(ids: Sequence[int]) -> tuple[int, int]:
    """``(period, span)`` of the repetition loop that ``ids`` ends in, or ``(0, 0)`` if none.

    A loop: the last ``span`` tokens repeat one unit of ``period`` tokens
    (``1 <= period <= REPEAT_MAX_PERIOD``) back to back, at least
    ``max(REPEAT_MIN_COPIES, ceil(REPEAT_MIN_SPAN / period))`` times; ``span``
    is the whole periodic tail (it may end in part of a copy). When several
    units qualify, the shortest (the loop's true unit). Keeping
    ``ids[:len(ids) - span + period]`` keeps the text before the loop and one
    copy. Plain Python: the reference for ``StopOnRepetitionLoop``'s tensor code.
    """
    ids = list(ids)
    n = len(ids)
    for period in range(1, min(REPEAT_MAX_PERIOD, n) + 1):
        run = 0  # how far back ids[j] == ids[j - period] holds, from the end
        while run < n - period and ids[n - 1 - run] == ids[n - 1 - run - period]:
            run += 1
        span = run + period
        if span >= period * _copies_needed(period):
            return period, span
    return 0, 0


def _copies_needed(period: int) -> int:
    return max(REPEAT_MIN_COPIES, math.ceil(REPEAT_MIN_SPAN / period))


class StopOnRepetitionLoop(StoppingCriteria):
    """Stops each sequence whose generated tokens end in a repetition loop (``loop_tail``'s rule).

    ``prompt_length``: the column where generated tokens start (the padded
    prompt length in a batch); only they are looked at. Returns one bool per
    sequence, as transformers (>= 4.39) expects of a stopping criterion.
    """

    def __init__(self, prompt_length: int) -> None:
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        return ends_in_loop(input_ids[:, self.prompt_length :])


def ends_in_loop(generated: torch.Tensor) -> torch.Tensor:
    """(batch, t) int64 token ids -> (batch,) bool: which rows end in a loop (``loop_tail`` != (0, 0))."""
    rows, n = generated.shape
    found = torch.zeros(rows, dtype=torch.bool, device=generated.device)
    for period in range(1, min(REPEAT_MAX_PERIOD, n) + 1):
        need = period * _copies_needed(period)  # tokens the periodic tail must cover
        if need > n:
            continue
        # The last (need - period) tokens each equal the token one period earlier.
        tail = generated[:, n - need + period :]
        earlier = generated[:, n - need : n - period]
        found |= (tail == earlier).all(dim=1)
    return found


class StopOnEvent(StoppingCriteria):
    """Stops every sequence once ``event`` is set: how a reader tells a background ``generate`` to stop."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


# Background generate threads of streams still being read, with their stop events.
_running_streams: dict[threading.Thread, threading.Event] = {}


@atexit.register
def _stop_running_streams() -> None:
    """At exit, stop and wait for streams nobody closed (their reader was dropped mid-answer).

    A daemon thread still inside torch when the interpreter finalises is
    killed mid-call and aborts the process; atexit hooks run before that.
    """
    for thread, stop in list(_running_streams.items()):
        stop.set()
        thread.join(timeout=30)



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
