"""Notebook 06's self-checks reject known wrong answers (tests/selfcheck_suite.py); the namespace holds np, rh, torch and the packaged generator."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import rag_helpers as rh

from selfcheck_suite import ROOT, exercise_tests, selfchecks

NOTEBOOK = ROOT / "notebooks" / "06_generation.ipynb"

# Known wrong answers, each as a learner would write it: exercise -> {mistake: code}.
WRONG: dict[str, dict[str, str]] = {
    "exercise-1": {
        "threshold not relative to the best token": """
            def min_p_filter(probs, min_p):
                filtered = np.where(probs >= min_p, probs, 0.0)
                return filtered / filtered.sum()
            """,
        "not rescaled to sum to 1": """
            def min_p_filter(probs, min_p):
                return np.where(probs >= min_p * probs.max(), probs, 0.0)
            """,
        "changes the caller's array": """
            def min_p_filter(probs, min_p):
                probs[probs < min_p * probs.max()] = 0.0
                probs /= probs.sum()
                return probs
            """,
    },
    "exercise-2": {
        "bits, not bytes": """
            def memory_gb(n_params, dtype):
                return n_params * torch.finfo(dtype).bits / 1e9
            """,
        "GiB (2**30) instead of GB": """
            def memory_gb(n_params, dtype):
                return n_params * torch.finfo(dtype).bits // 8 / 2**30
            """,
        "always 4 bytes a number": """
            def memory_gb(n_params, dtype):
                return n_params * 4 / 1e9
            """,
    },
    "exercise-3": {
        "off by one: the scores at the token's own position": """
            def answer_probabilities(model, prompt_ids, answer_ids):
                answer = torch.tensor([answer_ids], dtype=prompt_ids.dtype)
                with torch.inference_mode():
                    logits = model(input_ids=torch.cat([prompt_ids, answer], dim=1)).logits[0].float()
                n, m = prompt_ids.shape[1], len(answer_ids)
                probs = torch.softmax(logits[n : n + m], dim=-1)
                return probs[torch.arange(m), answer[0]].numpy()
            """,
        "scores, not probabilities (no softmax)": """
            def answer_probabilities(model, prompt_ids, answer_ids):
                answer = torch.tensor([answer_ids], dtype=prompt_ids.dtype)
                with torch.inference_mode():
                    logits = model(input_ids=torch.cat([prompt_ids, answer], dim=1)).logits[0].float()
                n, m = prompt_ids.shape[1], len(answer_ids)
                return logits[n - 1 : n - 1 + m][torch.arange(m), answer[0]].numpy()
            """,
        "the best token's probability, not the answer token's": """
            def answer_probabilities(model, prompt_ids, answer_ids):
                answer = torch.tensor([answer_ids], dtype=prompt_ids.dtype)
                with torch.inference_mode():
                    logits = model(input_ids=torch.cat([prompt_ids, answer], dim=1)).logits[0].float()
                n, m = prompt_ids.shape[1], len(answer_ids)
                return torch.softmax(logits[n - 1 : n - 1 + m], dim=-1).max(dim=-1).values.numpy()
            """,
        "softmax over the positions instead of the vocabulary": """
            def answer_probabilities(model, prompt_ids, answer_ids):
                answer = torch.tensor([answer_ids], dtype=prompt_ids.dtype)
                with torch.inference_mode():
                    logits = model(input_ids=torch.cat([prompt_ids, answer], dim=1)).logits[0].float()
                n, m = prompt_ids.shape[1], len(answer_ids)
                probs = torch.softmax(logits[n - 1 : n - 1 + m], dim=0)
                return probs[torch.arange(m), answer[0]].numpy()
            """,
    },
}


@pytest.fixture
def run_after(generator):
    """run_after(exercise, code): run `code`, then the exercise's check; returns what it printed."""

    def run(exercise: str, code: str) -> str:
        return selfchecks.run_check(NOTEBOOK, exercise, code, {"np": np, "rh": rh, "torch": torch, "generator": generator})

    return run


globals().update(exercise_tests(NOTEBOOK, WRONG))
