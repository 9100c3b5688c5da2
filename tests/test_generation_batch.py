"""Batched generation, stopping repetition loops, and a clean stop of a stream (issue 19 item 4, issue 17 item 4).

The real packaged SmolLM2-135M-Instruct, float32 on the CPU, greedy.
"""
from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import rag_helpers as rh
from conftest import JUPITER, VENUS
from rag_helpers.engine import generation
from rag_helpers.engine.corpus import load_python_docs
from rag_helpers.engine.generation import (
    REPEAT_MAX_PERIOD,
    REPEAT_MIN_COPIES,
    REPEAT_MIN_SPAN,
    StopOnEvent,
    StopOnRepetitionLoop,
    ends_in_loop,
    loop_tail,
)

ROOT = Path(__file__).resolve().parents[1]

# Seven prompts of quite different lengths (31 to 161 tokens with the chat template's system turn), answers
# that end early ("Paris") and answers that run to max_new_tokens, given in an
# order that is not sorted by length.
PROMPTS = [
    rh.build_prompt(rh.SAMPLE_QUESTION, [JUPITER, VENUS]),
    "Write one word: the capital of France.",
    "Hi",
    rh.build_prompt("what is the hottest planet?", [VENUS, JUPITER] * 4),
    "List three colours.",
    "Explain what a Python list comprehension is, with an example.",
    "Write one word: the capital of France.",  # a duplicate: both get their answer
]
MAX_NEW = 20


@pytest.fixture(scope="module")
def one_at_a_time(generator):
    return [generator.generate(p, MAX_NEW) for p in PROMPTS]


# ------------------------------------------------------------- batched greedy
@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_batched_answers_are_the_one_at_a_time_answers(generator, one_at_a_time, batch_size):
    lengths = [generator.count_tokens(p) for p in PROMPTS]
    assert max(lengths) > 4 * min(lengths)  # left padding really happens: up to 130 pad tokens
    assert len({a for a in one_at_a_time}) >= 5 and "Paris" in one_at_a_time[1]
    batched = generator.generate_batch(PROMPTS, MAX_NEW, batch_size=batch_size, stop_repeats=False)
    # Exactly equal, float32 on the CPU: the attention mask hides the padding and
    # positions are counted from each prompt's first real token.
    assert batched == one_at_a_time


def test_batched_with_loop_stopping_matches_generate_with_loop_stopping(generator):
    singles = [generator.generate(p, MAX_NEW, stop_repeats=True) for p in PROMPTS[:4]]
    assert generator.generate_batch(PROMPTS[:4], MAX_NEW, batch_size=4) == singles  # stop_repeats on by default


def test_the_tokenizer_is_left_as_it_was(generator):
    side = generator.tokenizer.padding_side
    generator.generate_batch(PROMPTS[:2], 1, batch_size=2)
    assert generator.tokenizer.padding_side == side


def test_a_prompt_too_long_for_the_window_is_named_by_index_before_any_generation(generator, monkeypatch):
    def no_generation(*args, **kwargs):
        raise AssertionError("generation started before every prompt was checked")

    monkeypatch.setattr(generator.model, "generate", no_generation)
    huge = "Jupiter has many moons. " * 2000  # ~12k tokens > 8192
    with pytest.raises(ValueError, match=r"^prompts\[2\]: the prompt is \d+ tokens .*context window of 8192 tokens"):
        generator.generate_batch(["Hi", "Hello", huge, "Hey"], 8)
    # The same sentence as generate's, after the index.
    with pytest.raises(ValueError) as single:
        generator.generate(huge, 8)
    with pytest.raises(ValueError) as batch:
        generator.generate_batch([huge], 8)
    assert str(batch.value) == "prompts[0]: " + str(single.value)


@pytest.mark.parametrize("prompts, error", [
    ("Hi there", TypeError), (["Hi", 3], TypeError), ([b"Hi"], TypeError), (None, TypeError),
])
def test_prompts_must_be_a_list_of_strings(generator, prompts, error):
    with pytest.raises(error, match="prompts"):
        generator.generate_batch(prompts, 4)


@pytest.mark.parametrize("name, bad", [("batch_size", 0), ("batch_size", 2.5), ("max_new_tokens", -1),
                                       ("max_new_tokens", True)])
def test_sizes_must_be_positive_integers(generator, name, bad):
    options = {"max_new_tokens": 4, "batch_size": 2, name: bad}
    with pytest.raises(ValueError, match=name):
        generator.generate_batch(["Hi"], **options)


def test_no_prompts_no_answers(generator):
    assert generator.generate_batch([], 4) == []


def test_progress_bar_counts_answers(generator, capsys):
    generator.generate_batch(["Hi", "Hello", "Hey"], 1, batch_size=2, progress=True)
    err = capsys.readouterr().err
    assert "3/3" in err and "answer" in err


# ------------------------------------------------------------- repetition loops
def naive_loop(ids: list[int]) -> bool:
    """The rule as written: the tail is c copies of its last p tokens, c = max(MIN_COPIES, ceil(MIN_SPAN / p))."""
    for p in range(1, REPEAT_MAX_PERIOD + 1):
        copies = max(REPEAT_MIN_COPIES, math.ceil(REPEAT_MIN_SPAN / p))
        if p * copies <= len(ids) and ids[len(ids) - p * copies:] == ids[len(ids) - p:] * copies:
            return True
    return False


def test_a_constructed_loop_is_found_and_trimmed_to_one_copy():
    before = [5, 17, 9, 250, 31]
    unit = [1000, 58, 58, 7]  # " ::" style units are 1 to 3 tokens; sentences 10 to 30
    copies = max(REPEAT_MIN_COPIES, math.ceil(REPEAT_MIN_SPAN / len(unit)))
    ids = before + unit * copies + unit[:2]
    period, span = loop_tail(ids)
    assert (period, span) == (4, 4 * copies + 2)
    assert ids[: len(ids) - span + period] == before + unit
    # One copy short of the rule: not a loop yet.
    assert loop_tail(before + unit * (copies - 1)) == (0, 0)
    # A sentence of 20 tokens three times.
    sentence = list(range(100, 120))
    assert loop_tail(before + sentence * 3) == (20, 60)
    assert loop_tail(before + sentence * 2) == (0, 0)
    # One token repeated: REPEAT_MIN_SPAN of them.
    assert loop_tail(before + [42] * REPEAT_MIN_SPAN) == (1, REPEAT_MIN_SPAN)
    assert loop_tail(before + [42] * (REPEAT_MIN_SPAN - 1)) == (0, 0)


def test_the_stopping_criterion_looks_only_at_generated_tokens_per_row():
    prompt = [3] * 40  # a prompt that "loops" must not stop the answer
    rows = torch.tensor([
        prompt + list(range(1000, 1000 + REPEAT_MIN_SPAN)),
        prompt + [7] * REPEAT_MIN_SPAN,
        list(range(40)) + [8, 9] * (REPEAT_MIN_SPAN // 2),
    ])
    done = StopOnRepetitionLoop(prompt_length=40)(rows, None)
    assert done.dtype == torch.bool and done.tolist() == [False, True, True]
    assert StopOnRepetitionLoop(prompt_length=40)(torch.tensor([prompt + [1]]), None).tolist() == [False]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 2), max_size=160), st.lists(st.integers(0, 2), min_size=1, max_size=6),
       st.integers(0, 40))
def test_tensor_rule_agrees_with_the_plain_rule_and_the_naive_definition(prefix, unit, copies):
    # A small alphabet and planted repeats: loops of every period, near misses, overlaps.
    ids = (prefix + unit * copies)[-200:]
    found = loop_tail(ids) != (0, 0)
    assert found == naive_loop(ids)
    assert bool(ends_in_loop(torch.tensor([ids], dtype=torch.long).reshape(1, -1))[0]) == found
    if found:
        period, span = loop_tail(ids)
        assert ids[len(ids) - span:] == [ids[len(ids) - span + (i % period)] for i in range(span)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 49151), min_size=1, max_size=300))
def test_random_token_ids_are_not_a_loop(ids):
    # Random ids over the whole vocabulary have no loop (the naive check agrees), so nothing stops.
    assert not naive_loop(ids)
    assert loop_tail(ids) == (0, 0)
    assert not ends_in_loop(torch.tensor([ids])).any()


def test_real_text_is_not_stopped(generator):
    # Prose and code of the shipped corpus's FAQ pages, checked at every token.
    documents = [d for d in load_python_docs() if d.source.startswith("faq/")][:3]
    window = REPEAT_MAX_PERIOD * REPEAT_MIN_COPIES
    checked = 0
    for doc in documents:
        ids = torch.tensor(generator.tokenizer(doc.text, add_special_tokens=False)["input_ids"])
        # Each token's window of the tokens before it; distinct negative ids before the start.
        padded = torch.cat([-torch.arange(1, window + 1), ids])
        hits = ends_in_loop(padded.unfold(0, window, 1)[1:])
        checked += len(ids)
        flagged = [generator.tokenizer.decode(ids[max(0, i - 40): i + 1]) for i in hits.nonzero().flatten().tolist()]
        # The one place in the whole corpus: 0.1 written in binary ("0011" repeated) in faq/design.
        assert all("00110011001100110011001100110011" in text for text in flagged), flagged
    assert checked > 10_000


def test_normal_answers_are_unchanged_by_loop_stopping(generator, one_at_a_time):
    assert generator.generate(PROMPTS[0], MAX_NEW, stop_repeats=True) == one_at_a_time[0]


def test_a_looping_answer_is_stopped_and_trimmed(generator):
    # A prompt that makes the packaged model loop under greedy decoding.
    prompt = LOOPING_PROMPT
    free = generator.generate(prompt, LOOP_TOKENS)
    stopped = generator.generate(prompt, LOOP_TOKENS, stop_repeats=True)
    free_ids = generator.tokenizer(free, add_special_tokens=False)["input_ids"]
    assert loop_tail(free_ids) != (0, 0), free
    assert stopped == ":::" and free.startswith(stopped) and len(free) > 3 * len(stopped), (stopped, free)
    stopped_ids = generator.tokenizer(stopped, add_special_tokens=False)["input_ids"]
    assert loop_tail(stopped_ids) == (0, 0), stopped
    assert generator.generate_batch([prompt, PROMPTS[1]], LOOP_TOKENS) == [stopped, generator.generate(PROMPTS[1], LOOP_TOKENS)]


# The packaged model, greedy, answers this with ":::" and two newlines over and over
# (a unit of 4 tokens); the issue saw "::" forty times on a Python-docs question.
LOOPING_PROMPT = "Write '::' fifty times in a row, nothing else."
LOOP_TOKENS = 40


# ------------------------------------------------------------- stopping a stream
def test_a_set_event_stops_every_row():
    event = threading.Event()
    rule = StopOnEvent(event)
    ids = torch.zeros((3, 5), dtype=torch.long)
    assert rule(ids, None).tolist() == [False] * 3
    event.set()
    assert rule(ids, None).tolist() == [True] * 3


def test_closing_a_stream_early_stops_and_joins_its_thread(generator):
    pieces = generator.stream("Write a long story about a dragon who learns Python.", 400)
    first = next(pieces)
    assert first
    start = time.perf_counter()
    pieces.close()  # what a consumer's `break` or an exception does, via contextlib.closing
    assert time.perf_counter() - start < 5  # one decoding step, not the 400 tokens left
    assert not [t for t in threading.enumerate() if t.name == "rag-helpers-stream"]
    assert generation._running_streams == {}


def test_stream_with_loop_stopping(generator):
    pieces = list(generator.stream(LOOPING_PROMPT, LOOP_TOKENS, stop_repeats=True))
    free = generator.generate(LOOPING_PROMPT, LOOP_TOKENS)
    streamed = "".join(pieces).strip()
    assert len(streamed) < len(free)  # stopped early; the copies shown before the stop stay


INTERRUPT_SCRIPT = textwrap.dedent("""
    import os, signal, sys, threading
    import rag_helpers as rh
    from rag_helpers.engine.generation import load_generator

    mode, repeats = sys.argv[1], int(sys.argv[2])
    # As in a terminal: a parent started in the background (CI, `cmd &`) hands down SIGINT ignored,
    # and Python then installs no KeyboardInterrupt handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    generator = load_generator(rh.PACKAGED_GENERATOR, device="cpu")
    prompt = "Write a long story about a dragon who learns to code in Python."
    for attempt in range(repeats):
        try:
            first = True
            for piece in generator.stream(prompt, 300):
                if mode == "consumer":  # Ctrl-C while the caller handles a piece (printing it)
                    os.kill(os.getpid(), signal.SIGINT)
                elif first:  # Ctrl-C a moment later, most likely while the reader waits for a piece
                    threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()
                first = False
            print("not interrupted", file=sys.stderr)
            sys.exit(3)
        except KeyboardInterrupt:
            if attempt == repeats - 1:
                print("interrupted", file=sys.stderr)
                sys.exit(130)
""")


@pytest.mark.parametrize("mode", ["consumer", "reader"])
def test_ctrl_c_while_streaming_exits_cleanly(tmp_path, mode):
    # Before: "terminate called without an active exception", SIGABRT, exit 134 (issue 19).
    script = tmp_path / "interrupt.py"
    script.write_text(INTERRUPT_SCRIPT)
    repeats = int(os.environ.get("RAG_STRESS", "2"))
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, str(script), mode, str(repeats)], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=600 + 30 * repeats)  # generous: a loaded 2-core machine
    assert "terminate called" not in done.stderr
    assert done.returncode == 130, done.stderr[-2000:]
    assert done.stderr.rstrip().endswith("interrupted")
