"""Every exercise's self-check can fail.

For each exercise of notebooks 01-07 the check cell (taken from the course notebook, where it
is defined once: tools/selfchecks.py copies it into the solutions notebook) is run
- after the solution from the solutions notebook: it must pass and say "correct";
- after the empty exercise cell (the function returns None): it must say "not attempted";
- after each of at least two known wrong answers: it must raise AssertionError.

A cell runs with exec() in a namespace holding what the notebook has defined by then
(np, rh, torch, the encoder, the generator, a pipeline): the real packaged models, loaded once
per session by the fixtures in conftest.py, and only for the notebooks that need them.
"""
from __future__ import annotations

import json
import shutil
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import rag_helpers as rh

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import selfchecks  # noqa: E402

# Notebooks 01-07; from 08 on, each notebook's checks have their own file (test_selfchecks_08.py, ...),
# whose namespace holds what that notebook defines.
NOTEBOOKS = {path.stem: path for path in selfchecks.course_notebooks() if int(path.stem[:2]) <= 7}

# Known wrong answers, each as a learner would write it: (notebook, exercise) -> {mistake: code}.
WRONG: dict[tuple[str, str], dict[str, str]] = {
    ("01_embeddings", "exercise-1"): {
        "diagonal hidden with 0 instead of -inf": """
            def most_similar_pair(sims):
                masked = np.array(sims, dtype=np.float64)
                np.fill_diagonal(masked, 0.0)
                i, j = np.unravel_index(np.argmax(masked), masked.shape)
                return int(i), int(j)
            """,
        "diagonal not hidden": """
            def most_similar_pair(sims):
                i, j = np.unravel_index(np.argmax(sims), np.shape(sims))
                return int(i), int(j)
            """,
        "changes the caller's matrix": """
            def most_similar_pair(sims):
                np.fill_diagonal(sims, -np.inf)
                i, j = np.unravel_index(np.argmax(sims), sims.shape)
                return int(i), int(j)
            """,
    },
    ("01_embeddings", "exercise-2"): {
        "not centred": """
            def explained_variance_ratio(x):
                spread = np.linalg.svd(x, compute_uv=False) ** 2
                return spread / spread.sum()
            """,
        "singular values not squared": """
            def explained_variance_ratio(x):
                s = np.linalg.svd(x - x.mean(axis=0), compute_uv=False)
                return s / s.sum()
            """,
        "smallest first": """
            def explained_variance_ratio(x):
                spread = np.linalg.svd(x - x.mean(axis=0), compute_uv=False)[::-1] ** 2
                return spread / spread.sum()
            """,
        "variance of each column, not of each direction": """
            def explained_variance_ratio(x):
                spread = np.sort(np.var(x, axis=0))[::-1]
                return spread / spread.sum()
            """,
    },
    ("01_embeddings", "exercise-3"): {
        "diagonal not hidden": """
            def neighbours_kept(vectors, points_2d):
                similar = vectors @ vectors.T
                distances = np.linalg.norm(points_2d[:, None] - points_2d[None, :], axis=-1)
                return float(np.mean(similar.argmax(axis=1) == distances.argmin(axis=1)))
            """,
        "farthest point on the map (argmax of the distances)": """
            def neighbours_kept(vectors, points_2d):
                similar = vectors @ vectors.T
                np.fill_diagonal(similar, -np.inf)
                distances = np.linalg.norm(points_2d[:, None] - points_2d[None, :], axis=-1)
                np.fill_diagonal(distances, -np.inf)
                return float(np.mean(similar.argmax(axis=1) == distances.argmax(axis=1)))
            """,
        "cosine of the map's points instead of their distance": """
            def neighbours_kept(vectors, points_2d):
                similar = vectors @ vectors.T
                np.fill_diagonal(similar, -np.inf)
                unit = points_2d / np.linalg.norm(points_2d, axis=1, keepdims=True)
                on_map = unit @ unit.T
                np.fill_diagonal(on_map, -np.inf)
                return float(np.mean(similar.argmax(axis=1) == on_map.argmax(axis=1)))
            """,
        "a count, not a fraction": """
            def neighbours_kept(vectors, points_2d):
                similar = vectors @ vectors.T
                np.fill_diagonal(similar, -np.inf)
                distances = np.linalg.norm(points_2d[:, None] - points_2d[None, :], axis=-1)
                np.fill_diagonal(distances, np.inf)
                return int(np.sum(similar.argmax(axis=1) == distances.argmin(axis=1)))
            """,
    },
    ("02_normalization", "exercise-1"): {
        "no rescaling: the one-liner as it is": """
            from rag_helpers.normalization import l2_normalize

            def robust_l2_normalize(x):
                return l2_normalize(x)
            """,
        "one factor for the whole matrix": """
            from rag_helpers.normalization import l2_normalize

            def robust_l2_normalize(x):
                return l2_normalize(x / np.max(np.abs(x)))
            """,
        "largest value, not largest |value|": """
            from rag_helpers.normalization import l2_normalize

            def robust_l2_normalize(x):
                return l2_normalize(x / np.max(x, axis=1, keepdims=True))
            """,
        "float64 instead of rescaling": """
            from rag_helpers.normalization import l2_normalize

            def robust_l2_normalize(x):
                return l2_normalize(x.astype(np.float64)).astype(x.dtype)
            """,
        "float64 out": """
            from rag_helpers.normalization import l2_normalize

            def robust_l2_normalize(x):
                x = x.astype(np.float64)
                return l2_normalize(x / np.max(np.abs(x), axis=1, keepdims=True))
            """,
    },
    ("02_normalization", "exercise-2"): {
        "no clip: NaN for a vector with itself": """
            def angle_degrees(a, b):
                return float(np.degrees(np.arccos(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))))
            """,
        "radians": """
            def angle_degrees(a, b):
                cosine = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
                return float(np.arccos(np.clip(cosine, -1.0, 1.0)))
            """,
        "not normalized (only right for unit vectors)": """
            def angle_degrees(a, b):
                return float(np.degrees(np.arccos(np.clip(a @ b, -1.0, 1.0))))
            """,
        "divides by one norm": """
            def angle_degrees(a, b):
                cosine = a @ b / np.linalg.norm(a) ** 2
                return float(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))))
            """,
    },
    ("03_vectorized_scoring", "exercise-1"): {
        "one product, no blocks": """
            def scores_in_blocks(query, docs, block_rows):
                return docs @ query
            """,
        "the last, shorter block dropped": """
            def scores_in_blocks(query, docs, block_rows):
                scores = np.zeros(len(docs), dtype=np.float32)
                for start in range(0, len(docs) - block_rows + 1, block_rows):
                    scores[start:start + block_rows] = docs[start:start + block_rows] @ query
                return scores
            """,
        "every block written at the start": """
            def scores_in_blocks(query, docs, block_rows):
                scores = np.zeros(len(docs), dtype=np.float32)
                for start in range(0, len(docs), block_rows):
                    block = docs[start:start + block_rows] @ query
                    scores[:len(block)] = block
                return scores
            """,
        "blocks one row too large": """
            def scores_in_blocks(query, docs, block_rows):
                scores = np.zeros(len(docs), dtype=np.float32)
                for start in range(0, len(docs), block_rows):
                    scores[start:start + block_rows + 1] = docs[start:start + block_rows + 1] @ query
                return scores
            """,
    },
    ("03_vectorized_scoring", "exercise-2"): {
        "GiB (2**30) instead of GB": """
            def min_seconds_per_query(n, d, dtype, gigabytes_per_second):
                return n * d * np.dtype(dtype).itemsize / (gigabytes_per_second * 2**30)
            """,
        "always 4 bytes a number": """
            def min_seconds_per_query(n, d, dtype, gigabytes_per_second):
                return n * d * 4 / (gigabytes_per_second * 1e9)
            """,
        "bits, not bytes": """
            def min_seconds_per_query(n, d, dtype, gigabytes_per_second):
                return n * d * np.dtype(dtype).itemsize * 8 / (gigabytes_per_second * 1e9)
            """,
    },
    ("04_top_k", "exercise-1"): {
        "unstable sort": """
            def indices_above(scores, threshold):
                order = np.argsort(-scores)
                return order[: np.count_nonzero(scores >= threshold)]
            """,
        "reversed ascending sort": """
            def indices_above(scores, threshold):
                order = np.argsort(scores, kind="stable")[::-1]
                return order[: np.count_nonzero(scores >= threshold)]
            """,
        "strictly above the threshold": """
            def indices_above(scores, threshold):
                order = np.argsort(-scores, kind="stable")
                return order[: np.count_nonzero(scores > threshold)]
            """,
        "in index order, not best first": """
            def indices_above(scores, threshold):
                return np.flatnonzero(scores >= threshold)
            """,
    },
    ("04_top_k", "exercise-2"): {
        "unstable sort": """
            def top_k_each_row(score_matrix, k):
                return np.argsort(-score_matrix, axis=1)[:, :k]
            """,
        "sorted along the wrong axis": """
            def top_k_each_row(score_matrix, k):
                return np.argsort(-score_matrix, axis=0, kind="stable")[:, :k]
            """,
        "reversed ascending sort": """
            def top_k_each_row(score_matrix, k):
                return np.argsort(score_matrix, axis=1, kind="stable")[:, ::-1][:, :k]
            """,
        "k rows instead of k columns": """
            def top_k_each_row(score_matrix, k):
                return np.argsort(-score_matrix, axis=1, kind="stable")[:k]
            """,
    },
    ("04_top_k", "exercise-3"): {
        "the new block's candidates first in the merge (ties go to later documents)": """
            def top_k_in_blocks(scores, k, block):
                best_idx, best_val = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
                for start in range(0, len(scores), block):
                    part = scores[start:start + block]
                    local = np.argsort(-part, kind="stable")[:k]
                    pool_idx = np.concatenate([local + start, best_idx])
                    pool_val = np.concatenate([part[local], best_val])
                    keep = np.argsort(-pool_val, kind="stable")[:k]
                    best_idx, best_val = pool_idx[keep], pool_val[keep]
                return best_idx
            """,
        "unstable sort in the merge": """
            def top_k_in_blocks(scores, k, block):
                best_idx, best_val = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
                for start in range(0, len(scores), block):
                    part = scores[start:start + block]
                    local = np.argsort(-part, kind="stable")[:k]
                    pool_idx = np.concatenate([best_idx, local + start])
                    pool_val = np.concatenate([best_val, part[local]])
                    keep = np.argsort(-pool_val)[:k]
                    best_idx, best_val = pool_idx[keep], pool_val[keep]
                return best_idx
            """,
        "the block's offset forgotten": """
            def top_k_in_blocks(scores, k, block):
                best_idx, best_val = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
                for start in range(0, len(scores), block):
                    part = scores[start:start + block]
                    local = np.argsort(-part, kind="stable")[:k]
                    pool_idx = np.concatenate([best_idx, local])
                    pool_val = np.concatenate([best_val, part[local]])
                    keep = np.argsort(-pool_val, kind="stable")[:k]
                    best_idx, best_val = pool_idx[keep], pool_val[keep]
                return best_idx
            """,
        "only each block's best one kept": """
            def top_k_in_blocks(scores, k, block):
                best_idx, best_val = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
                for start in range(0, len(scores), block):
                    part = scores[start:start + block]
                    local = np.argsort(-part, kind="stable")[:1]
                    pool_idx = np.concatenate([best_idx, local + start])
                    pool_val = np.concatenate([best_val, part[local]])
                    keep = np.argsort(-pool_val, kind="stable")[:k]
                    best_idx, best_val = pool_idx[keep], pool_val[keep]
                return best_idx
            """,
        "the whole array sorted at once": """
            def top_k_in_blocks(scores, k, block):
                return np.argsort(-np.asarray(scores), kind="stable")[:k]
            """,
    },
    ("05_prompts", "exercise-1"): {
        "numbered from 0": """
            def build_numbered_prompt(question, documents):
                context = "\\n".join(f"[{i}] {doc}" for i, doc in enumerate(documents))
                return "CONTEXT:\\n" + context + "\\n\\nQUESTION:\\n" + question + "\\n\\nANSWER:\\n"
            """,
        "'1.' instead of '[1]'": """
            def build_numbered_prompt(question, documents):
                context = "\\n".join(f"{i}. {doc}" for i, doc in enumerate(documents, start=1))
                return "CONTEXT:\\n" + context + "\\n\\nQUESTION:\\n" + question + "\\n\\nANSWER:\\n"
            """,
        "no newline after ANSWER:": """
            def build_numbered_prompt(question, documents):
                context = "\\n".join(f"[{i}] {doc}" for i, doc in enumerate(documents, start=1))
                return "CONTEXT:\\n" + context + "\\n\\nQUESTION:\\n" + question + "\\n\\nANSWER:"
            """,
    },
    ("05_prompts", "exercise-2"): {
        "the templated text's tokens, nothing subtracted": """
            def template_overhead(tokenizer, text):
                templated = tokenizer.apply_chat_template([{"role": "user", "content": text}],
                                                          tokenize=False, add_generation_prompt=True)
                return len(tokenizer(templated, add_special_tokens=False)["input_ids"])
            """,
        "characters instead of tokens": """
            def template_overhead(tokenizer, text):
                templated = tokenizer.apply_chat_template([{"role": "user", "content": text}],
                                                          tokenize=False, add_generation_prompt=True)
                return len(templated) - len(text)
            """,
        "without the opening of the assistant's turn": """
            def template_overhead(tokenizer, text):
                templated = tokenizer.apply_chat_template([{"role": "user", "content": text}],
                                                          tokenize=False, add_generation_prompt=False)
                n_templated = len(tokenizer(templated, add_special_tokens=False)["input_ids"])
                return n_templated - len(tokenizer(text, add_special_tokens=False)["input_ids"])
            """,
    },
    ("05_prompts", "exercise-3"): {
        "case-sensitive": """
            import re
            def defang(text):
                return re.sub(r"(?m)^(\\s*(?:CONTEXT|QUESTION|ANSWER)\\s*):", r"\\1 -", text)
            """,
        "first line only (no MULTILINE)": """
            import re
            def defang(text):
                return re.sub(r"(?i)^(\\s*(?:context|question|answer)\\s*):", r"\\1 -", text)
            """,
        "every colon": """
            def defang(text):
                return text.replace(":", " -")
            """,
        "anywhere in the line": """
            import re
            def defang(text):
                return re.sub(r"(?i)\\b(context|question|answer)(\\s*):", r"\\1\\2 -", text)
            """,
        "no spaces before the colon": """
            import re
            def defang(text):
                return re.sub(r"(?im)^(\\s*(?:context|question|answer)):", r"\\1 -", text)
            """,
    },
    ("05_prompts", "exercise-4"): {
        "stops at the first document that does not fit (fit_documents)": """
            from rag_helpers.prompts import build_prompt
            def fit_skipping(question, documents, count_tokens, budget):
                kept = []
                for doc in documents:
                    if count_tokens(build_prompt(question, kept + [doc])) > budget:
                        break
                    kept.append(doc)
                if not kept:
                    raise ValueError("nothing fits")
                return kept, build_prompt(question, kept)
            """,
        "counts the documents alone, not the whole prompt": """
            from rag_helpers.prompts import build_prompt
            def fit_skipping(question, documents, count_tokens, budget):
                kept, used = [], 0
                for doc in documents:
                    if used + count_tokens(doc) <= budget:
                        kept.append(doc)
                        used += count_tokens(doc)
                if not kept:
                    raise ValueError("nothing fits")
                return kept, build_prompt(question, kept)
            """,
        "shortest documents first": """
            from rag_helpers.prompts import build_prompt
            def fit_skipping(question, documents, count_tokens, budget):
                kept = []
                for doc in sorted(documents, key=len):
                    if count_tokens(build_prompt(question, kept + [doc])) <= budget:
                        kept.append(doc)
                if not kept:
                    raise ValueError("nothing fits")
                return kept, build_prompt(question, kept)
            """,
        "nothing fits: an empty list instead of an error": """
            from rag_helpers.prompts import build_prompt
            def fit_skipping(question, documents, count_tokens, budget):
                kept = []
                for doc in documents:
                    if count_tokens(build_prompt(question, kept + [doc])) <= budget:
                        kept.append(doc)
                return kept, build_prompt(question, kept)
            """,
    },
    ("06_generation", "exercise-1"): {
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
    ("06_generation", "exercise-2"): {
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
    ("06_generation", "exercise-3"): {
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
    ("07_full_pipeline", "exercise-1"): {
        "returns the (score, document) pair": """
            def best_document(question, documents):
                return rh.RAGPipeline(documents, k=1, encoder=encoder).retrieve(question)[0]
            """,
        "the worst document": """
            def best_document(question, documents):
                ranking = rh.RAGPipeline(documents, encoder=encoder).retrieve(question, k=len(documents))
                return ranking[-1][1]
            """,
        "the first document given": """
            def best_document(question, documents):
                return documents[0]
            """,
    },
    ("07_full_pipeline", "exercise-2"): {
        "off by one (counts from 0)": """
            def rank_of(pipe, question, needle):
                ranking = pipe.retrieve(question, k=len(pipe.documents))
                return next(rank for rank, (_, doc) in enumerate(ranking) if needle in doc)
            """,
        "the document's position in the knowledge base, not in the ranking": """
            def rank_of(pipe, question, needle):
                return 1 + next(i for i, doc in enumerate(pipe.documents) if needle in doc)
            """,
        "ranked worst first": """
            def rank_of(pipe, question, needle):
                ranking = pipe.retrieve(question, k=len(pipe.documents))[::-1]
                return next(rank for rank, (_, doc) in enumerate(ranking, start=1) if needle in doc)
            """,
    },
    ("07_full_pipeline", "exercise-3"): {
        "the usual order (best first)": """
            def best_last(pipe, question, k):
                return pipe.prepare(question, k, fit=False).prompt
            """,
        "the pipeline's own k, not the k asked for": """
            def best_last(pipe, question, k):
                return rh.build_prompt(question, [hit.document for hit in pipe.retrieve(question)][::-1])
            """,
        "only the best document moved to the end": """
            def best_last(pipe, question, k):
                ranked = [hit.document for hit in pipe.retrieve(question, k=k)]
                return rh.build_prompt(question, ranked[1:] + ranked[:1])
            """,
        "the k worst documents of the whole knowledge base": """
            def best_last(pipe, question, k):
                everything = [hit.document for hit in pipe.retrieve(question, k=len(pipe.documents))]
                return rh.build_prompt(question, everything[::-1][:k])
            """,
    },
}

EXERCISES = [(stem, exercise) for stem, path in NOTEBOOKS.items()
             for exercise in sorted(selfchecks.tagged_cells(path, "self-check"))]
WRONG_ANSWERS = [(stem, exercise, mistake) for (stem, exercise), answers in WRONG.items() for mistake in answers]


def cell_source(stem: str, exercise: str, tag: str) -> str:
    path = NOTEBOOKS[stem] if tag != "solution" else selfchecks.solutions_path(NOTEBOOKS[stem])
    return selfchecks.source(selfchecks.tagged_cells(path, tag)[exercise])


@pytest.fixture(scope="module")
def sample_pipeline(encoder):
    """Notebook 07's `pipe`: the sample documents, k = 2, no generator loaded (none is needed)."""
    return rh.RAGPipeline(rh.SAMPLE_DOCUMENTS, k=2, encoder=encoder)


@pytest.fixture
def run_after(request, capsys):
    """run_after(stem, exercise, code): run `code`, then the exercise's check; returns what it printed."""

    def run(stem: str, exercise: str, code: str) -> str:
        namespace = {"np": np, "rh": rh}
        if stem.startswith(("05", "06")):
            namespace["generator"] = request.getfixturevalue("generator")
        if stem.startswith("06"):
            import torch

            namespace["torch"] = torch
        if stem.startswith("07"):
            namespace["encoder"] = request.getfixturevalue("encoder")
            namespace["pipe"] = request.getfixturevalue("sample_pipeline")
        exec(compile(textwrap.dedent(code), f"<{stem} {exercise} answer>", "exec"), namespace)
        capsys.readouterr()
        check = cell_source(stem, exercise, "self-check")
        exec(compile(check, f"<{stem} {exercise} self-check>", "exec"), namespace)
        return capsys.readouterr().out

    return run


def test_every_exercise_has_known_wrong_answers():
    assert len(EXERCISES) >= 14 and all(sum(s == stem for s, _ in EXERCISES) >= 2 for stem in NOTEBOOKS)
    assert set(WRONG) == set(EXERCISES)
    assert all(len(answers) >= 2 for answers in WRONG.values())


def test_check_cells_are_defined_once_and_copied_exactly():
    assert len(NOTEBOOKS) >= 7
    for path in NOTEBOOKS.values():
        assert selfchecks.problems(path) == []


@pytest.mark.parametrize(("stem", "exercise"), EXERCISES)
def test_the_solution_passes(stem, exercise, run_after):
    printed = run_after(stem, exercise, cell_source(stem, exercise, "solution"))
    assert f"{exercise.replace('exercise-', 'Exercise ')}: correct!" in printed


@pytest.mark.parametrize(("stem", "exercise"), EXERCISES)
def test_an_empty_exercise_is_not_attempted_yet(stem, exercise, run_after):
    stub = cell_source(stem, exercise, "exercise")
    assert "return None" in stub
    printed = run_after(stem, exercise, stub)
    assert "not attempted yet" in printed and "correct" not in printed


@pytest.mark.parametrize(("stem", "exercise", "mistake"), WRONG_ANSWERS)
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # the NaN some mistakes make
def test_a_wrong_answer_is_rejected(stem, exercise, mistake, run_after):
    with pytest.raises(AssertionError):
        run_after(stem, exercise, WRONG[stem, exercise][mistake])


def copy_course(tmp_path: Path) -> Path:
    """A copy of notebook 01 and its solutions, to change freely."""
    notebook = tmp_path / NOTEBOOKS["01_embeddings"].name
    shutil.copy(NOTEBOOKS["01_embeddings"], notebook)
    (tmp_path / "solutions").mkdir()
    shutil.copy(selfchecks.solutions_path(NOTEBOOKS["01_embeddings"]), selfchecks.solutions_path(notebook))
    return notebook


def test_sync_copies_a_changed_check_and_nothing_else(tmp_path):
    notebook = copy_course(tmp_path)
    solutions = selfchecks.solutions_path(notebook)
    before = json.loads(solutions.read_text(encoding="utf-8"))

    nb = json.loads(notebook.read_text(encoding="utf-8"))
    check = next(c for c in nb["cells"] if "self-check" in c["metadata"].get("tags", []))
    check["source"].append("\nprint('one more line')")
    notebook.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    assert any("differs" in problem for problem in selfchecks.problems(notebook))

    assert selfchecks.sync(notebook) is True
    assert selfchecks.problems(notebook) == []
    after = json.loads(solutions.read_text(encoding="utf-8"))
    changed = [i for i, (a, b) in enumerate(zip(before["cells"], after["cells"])) if a != b]
    assert len(before["cells"]) == len(after["cells"]) and len(changed) == 1
    assert after["cells"][changed[0]]["metadata"]["tags"] == ["self-check"]
    assert selfchecks.sync(notebook) is False  # nothing left to copy


def test_check_reports_a_missing_check_cell(tmp_path):
    notebook = copy_course(tmp_path)
    solutions = selfchecks.solutions_path(notebook)
    nb = json.loads(solutions.read_text(encoding="utf-8"))
    nb["cells"] = [c for c in nb["cells"] if c["metadata"].get("exercise") != "exercise-2"
                   or "self-check" not in c["metadata"].get("tags", [])]
    solutions.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    assert any("exercise-2: no cell tagged" in problem for problem in selfchecks.problems(notebook))
    with pytest.raises(ValueError, match="exercise-2"):
        selfchecks.sync(notebook)
