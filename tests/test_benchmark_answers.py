"""The answer experiment (``python -m benchmarks answers``) generates each distinct prompt once."""
from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks package lives at the root

_OFFLINE = os.environ.get("HF_HUB_OFFLINE")
from benchmarks.answers import _SamePromptSameAnswer  # noqa: E402

if _OFFLINE is None:  # importing the benchmarks sets it: leave the other tests' environment as it was
    os.environ.pop("HF_HUB_OFFLINE", None)


class _Counting:
    name = "counting"

    def __init__(self) -> None:
        self.asked: list[list[str]] = []

    def generate_batch(self, prompts, max_new_tokens, **options):
        self.asked.append(list(prompts))
        return [f"{p}:{max_new_tokens}:{options.get('stop_repeats', True)}" for p in prompts]


def test_a_prompt_already_answered_is_not_generated_again():
    inner = _Counting()
    memo = _SamePromptSameAnswer(inner)
    assert memo.generate_batch(["a", "b", "a"], 8) == ["a:8:True", "b:8:True", "a:8:True"]
    assert inner.asked == [["a", "b"]] and memo.take_reused() == 1
    assert memo.generate_batch(["b", "c"], 8) == ["b:8:True", "c:8:True"]
    assert inner.asked[-1] == ["c"] and memo.take_reused() == 1 and memo.take_reused() == 0
    # Another length or loop setting is another answer.
    assert memo.generate_batch(["a"], 16, stop_repeats=False) == ["a:16:False"]
    assert inner.asked[-1] == ["a"] and memo.take_reused() == 0
    assert memo.generate_batch(["a", "b"], 8) == ["a:8:True", "b:8:True"] and len(inner.asked) == 3
    assert memo.name == "counting"   # everything else is the generator's
