"""Notebook 11's self-checks can fail: each rejects known wrong answers, passes the solution, and says
"not attempted" for the empty exercise.

The check cells are taken from the course notebook (tools/selfchecks.py copies them into the solutions
notebook) and run with exec() after the code under test, in a namespace holding what the notebook's
checks and solutions use: np, rh, and the taught rouge_tokens and split_sentences. They need no model.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

import rag_helpers as rh
from rag_helpers.answers import rouge_tokens, split_sentences
from selfcheck_suite import exercise_tests

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "11_is_the_answer_right.ipynb"

# Known wrong answers, each as a learner would write it: exercise -> {mistake: code}.
WRONG: dict[str, dict[str, str]] = {
    "exercise-1": {
        "counts not clipped (every n-gram of the prediction found in the gold counts)": """
            def rouge_n(prediction, gold, n):
                p, g = rouge_tokens(prediction), rouge_tokens(gold)
                mine = [tuple(p[i:i + n]) for i in range(len(p) - n + 1)]
                theirs = [tuple(g[i:i + n]) for i in range(len(g) - n + 1)]
                shared = sum(gram in theirs for gram in mine)
                if not shared:
                    return 0.0, 0.0, 0.0
                precision, recall = shared / len(mine), min(shared / len(theirs), 1.0)
                return precision, recall, 2 * precision * recall / (precision + recall)
            """,
        "sets of n-grams (repeats ignored)": """
            def rouge_n(prediction, gold, n):
                p, g = rouge_tokens(prediction), rouge_tokens(gold)
                mine = {tuple(p[i:i + n]) for i in range(len(p) - n + 1)}
                theirs = {tuple(g[i:i + n]) for i in range(len(g) - n + 1)}
                shared = len(mine & theirs)
                if not shared:
                    return 0.0, 0.0, 0.0
                precision, recall = shared / len(mine), shared / len(theirs)
                return precision, recall, 2 * precision * recall / (precision + recall)
            """,
        "precision and recall swapped": """
            def rouge_n(prediction, gold, n):
                from collections import Counter
                def grams(text):
                    t = rouge_tokens(text)
                    return Counter(tuple(t[i:i + n]) for i in range(len(t) - n + 1))
                mine, theirs = grams(prediction), grams(gold)
                shared = sum((mine & theirs).values())
                if not shared:
                    return 0.0, 0.0, 0.0
                recall, precision = shared / sum(mine.values()), shared / sum(theirs.values())
                return precision, recall, 2 * precision * recall / (precision + recall)
            """,
        "words split on spaces only (not rouge_tokens)": """
            def rouge_n(prediction, gold, n):
                from collections import Counter
                def grams(text):
                    t = text.lower().split()
                    return Counter(tuple(t[i:i + n]) for i in range(len(t) - n + 1))
                mine, theirs = grams(prediction), grams(gold)
                shared = sum((mine & theirs).values())
                if not shared:
                    return 0.0, 0.0, 0.0
                precision, recall = shared / sum(mine.values()), shared / sum(theirs.values())
                return precision, recall, 2 * precision * recall / (precision + recall)
            """,
    },
    "exercise-2": {
        "support equal to the threshold dropped (> instead of >=)": """
            def keep_supported(sentences, support, threshold):
                kept = [s for s, v in zip(sentences, support) if v > threshold]
                return " ".join(kept) if kept else "I don't know."
            """,
        "an empty answer when nothing is supported": """
            def keep_supported(sentences, support, threshold):
                return " ".join(s for s, v in zip(sentences, support) if v >= threshold)
            """,
        "sorted by support instead of kept in order": """
            def keep_supported(sentences, support, threshold):
                order = np.argsort(-np.asarray(support), kind="stable")
                kept = [sentences[i] for i in order if support[i] >= threshold]
                return " ".join(kept) if kept else "I don't know."
            """,
        "the unsupported sentences kept instead": """
            def keep_supported(sentences, support, threshold):
                kept = [s for s, v in zip(sentences, support) if v < threshold]
                return " ".join(kept) if kept else "I don't know."
            """,
    },
    "exercise-3": {
        "every common word of a, in order": """
            def lcs_words(a, b):
                return [token for token in a if token in b]
            """,
        "greedy: each word of a matched with the next one in b": """
            def lcs_words(a, b):
                out, j = [], 0
                for token in a:
                    if token in b[j:]:
                        j = b.index(token, j) + 1
                        out.append(token)
                return out
            """,
        "the walk back collected but never reversed": """
            def lcs_words(a, b):
                table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
                for i in range(1, len(a) + 1):
                    for j in range(1, len(b) + 1):
                        table[i][j] = (table[i - 1][j - 1] + 1 if a[i - 1] == b[j - 1]
                                       else max(table[i - 1][j], table[i][j - 1]))
                out, i, j = [], len(a), len(b)
                while i and j:
                    if a[i - 1] == b[j - 1]:
                        out.append(a[i - 1]); i, j = i - 1, j - 1
                    elif table[i - 1][j] >= table[i][j - 1]:
                        i -= 1
                    else:
                        j -= 1
                return out
            """,
        "the longest common contiguous run (substring) instead": """
            def lcs_words(a, b):
                best = []
                for i in range(len(a)):
                    for j in range(len(b)):
                        k = 0
                        while i + k < len(a) and j + k < len(b) and a[i + k] == b[j + k]:
                            k += 1
                        if k > len(best):
                            best = a[i:i + k]
                return list(best)
            """,
    },
}

globals().update(exercise_tests(NOTEBOOK, WRONG, {
    "np": np, "rh": rh, "rouge_tokens": rouge_tokens, "split_sentences": split_sentences}))
