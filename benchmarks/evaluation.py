"""Evaluation: dense vs BM25 vs hybrid retrieval on the labelled Python-docs questions, and "I don't know".

Three measurements, in this order, so that nothing is tuned on the test half:

1. **Dev half** (87 labelled FAQ questions): dense, BM25, hybrid RRF and
   hybrid weighted (dense weight w = 0, 0.1, ..., 1) at k = 1, 3, 5, 10, for
   three chunkings of the whole corpus (27 FAQ and HOWTO pages: retrieval
   has every page to choose from, not only the FAQ pages that hold the
   answers). The winner on dev (highest recall@5, then MRR@10) fixes the
   chunking and the fusion weight.
2. **Test half** (the other 87), once, with those settings: every method.
3. **The "I don't know" threshold**: the best dense score of each dev
   question, answerable and unanswerable (default chunking), the trade-off
   curve and ``abstention.choose_threshold``'s choice; then both error
   rates on the test half at that threshold.
4. **Told to say "I don't know"**: the packaged SmolLM2-135M-Instruct,
   greedy, prompted with ``build_prompt(..., style="idk")`` on the 23
   unanswerable dev questions and on 23 answerable ones whose answer is in
   the retrieved context; the plain prompt (no instruction) as a control.

``python -m benchmarks evaluation [--quick]``, or on its own,
``python -m benchmarks.evaluation [--quick]``: prints markdown tables, writes
nothing (the chunk embeddings go to the user cache, like the notebooks').
The first run embeds about 7,000 chunks: minutes on a laptop CPU.
``--quick`` uses the default chunking only and 8 questions of each kind for
the generator.
"""
from __future__ import annotations

import os
import re
import sys
import time

# Before any Hugging Face import, as in benchmarks/__main__.py: the packaged models, no network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

import rag_helpers as rh  # noqa: E402
from rag_helpers.engine.abstention import (  # noqa: E402
    DEFAULT_MIN_SCORE,
    best_scores,
    choose_threshold,
    error_rates,
    threshold_tradeoff,
)
from rag_helpers.engine.chunking import DEFAULT_CHUNK_TOKENS, DEFAULT_OVERLAP  # noqa: E402
from rag_helpers.engine.comparison import ChunkRetrievers, choose_weight, compare, sweep_weights  # noqa: E402
from rag_helpers.engine.corpus import load_labelled_questions, load_python_docs, load_unanswerable_questions  # noqa: E402
from rag_helpers.engine.prompts import build_prompt  # noqa: E402

from .common import Goal, Section, table  # noqa: E402

KS = (1, 3, 5, 10)
CHUNKINGS = [(100, 20), (DEFAULT_CHUNK_TOKENS, DEFAULT_OVERLAP), (250, 50)]  # (chunk_tokens, overlap)
COLUMNS = ("hit_rate@1", "recall@1", "recall@3", "recall@5", "recall@10", "mrr@10", "ndcg@10")
# The generator measurement: k retrieved chunks in the prompt, answers of at most MAX_NEW tokens.
IDK_K, MAX_NEW, IDK_QUESTIONS, QUICK_IDK_QUESTIONS = 3, 40, 23, 8
# The prompt styles tried: "idk" tells the model to say "I don't know"; "plain" (no instruction) is
# the control, to see what the instruction changes.
IDK_STYLES = ("idk", "plain")
# "I don't know", "I do not know", with a straight or a curly apostrophe.
_IDK = re.compile(r"\bi (?:don['’]?t|do not) know\b", re.IGNORECASE)


def says_idk(answer: str) -> bool:
    """True when the answer says "I don't know" (or "I do not know")."""
    return bool(_IDK.search(answer))


def _dev_sweep(encoder, docs, dev, quick: bool):
    """Every chunking and method on the dev half: table rows, and the settings chosen."""
    rows, weight_rows, results, seconds = [], {}, [], []
    best = None  # ((recall@5, mrr@10), chunking, method, weight) of the best so far
    for chunk_tokens, overlap in CHUNKINGS if not quick else [(DEFAULT_CHUNK_TOKENS, DEFAULT_OVERLAP)]:
        start = time.perf_counter()
        retrievers = ChunkRetrievers.build(docs, encoder, chunk_tokens, overlap)
        built = time.perf_counter() - start
        relevance = retrievers.relevance(dev)
        start = time.perf_counter()
        scores = retrievers.score([q.question for q in dev])
        by_weight = sweep_weights(scores, relevance, KS)
        weight = choose_weight(by_weight)
        found = compare(scores, relevance, KS, weight=weight)
        seconds.append(time.perf_counter() - start)
        label = f"{chunk_tokens}/{overlap} ({len(retrievers.chunks):,} chunks)"
        rows += [[label, m + (f" (w = {weight})" if m == "hybrid weighted" else ""), *(f"{r[c]:.3f}" for c in COLUMNS)]
                 for m, r in found.items()]
        for w, r in by_weight.items():
            weight_rows.setdefault(w, [w]).append(f"{r['recall@5']:.3f} / {r['mrr@10']:.3f}")
        for method, r in found.items():
            key = (r["recall@5"], r["mrr@10"])  # the criterion: recall@5, then MRR@10
            results.append({"chunking": [chunk_tokens, overlap], "method": method, "weight": weight, **r.mean})
            if best is None or key > best[0]:
                best = (key, (chunk_tokens, overlap), method, weight)
        print(f"  dev {label}: chunks ready in {built:.1f} s; {len(found) + len(by_weight)} rankings "
              f"evaluated in {seconds[-1] * 1e3:.0f} ms", flush=True)
    _, chunking, method, weight = best
    return rows, list(weight_rows.values()), results, (chunking, method, weight), seconds


def _test_report(encoder, docs, test, chunking, weight):
    retrievers = ChunkRetrievers.build(docs, encoder, *chunking)
    scores = retrievers.score([q.question for q in test])
    found = compare(scores, retrievers.relevance(test), KS, weight=weight)
    return found, len(retrievers.chunks)


def _threshold(encoder, docs):
    """The dev choice, its trade-off, and both error rates on dev and test (default chunking)."""
    retrievers = ChunkRetrievers.build(docs, encoder)
    scores = {}
    for split in ("dev", "test"):
        answerable = [q.question for q in load_labelled_questions(split)]
        unanswerable = [q.question for q in load_unanswerable_questions(split)]
        scores[split] = (best_scores(retrievers, answerable), best_scores(retrievers, unanswerable))
    chosen = choose_threshold(*scores["dev"])
    capped = choose_threshold(*scores["dev"], max_wrongly_refused=0.05)
    return chosen, capped, {split: error_rates(*s, chosen) for split, s in scores.items()}, scores


def _idk_rates(encoder, docs, n_questions: int) -> tuple[list[list[str]], dict, list[str], float]:
    """How often SmolLM2 says "I don't know" with each prompt style of ``IDK_STYLES``; also seconds per answer."""
    retrievers = ChunkRetrievers.build(docs, encoder)
    generator = rh.load_generator(rh.PACKAGED_GENERATOR, device="cpu")
    dev = load_labelled_questions("dev")
    relevance = retrievers.relevance(dev)
    top = retrievers.score([q.question for q in dev]).rank("dense", IDK_K)
    # Answerable questions whose answer reached the prompt: saying "I don't know" to them is wrong.
    in_context = [q.question for q, ids, rel in zip(dev, top, relevance) if rel & set(ids.tolist())]
    groups = {
        "unanswerable (should say it)": [q.question for q in load_unanswerable_questions("dev")][:n_questions],
        "answerable, answer in the context (should not)": in_context[:n_questions],
    }
    rows, raw, examples, start, n_answers = [], {}, [], time.perf_counter(), 0
    for group, questions in groups.items():
        ids = retrievers.score(questions).rank("dense", IDK_K)
        row = [group, len(questions)]
        for style in IDK_STYLES:
            answers = [generator.generate(build_prompt(q, [retrievers.chunks[i].text for i in r.tolist()],
                                                       style=style), MAX_NEW)
                       for q, r in zip(questions, ids)]
            n_answers += len(answers)
            count = sum(says_idk(a) for a in answers)
            raw[f"{group} {style}"] = answers
            examples.append(f"{group}, style {style}: {questions[0]!r} -> {answers[0]!r}")
            row.append(f"{count} ({count / len(questions):.0%})")
            print(f"  generator, {group}, style {style}: 'I don't know' {count}/{len(questions)}", flush=True)
        rows.append(row)
    return rows, raw, examples, (time.perf_counter() - start) / n_answers


def run(quick: bool = False) -> Section:
    encoder = rh.load_encoder(device="cpu")
    docs = load_python_docs()
    dev, test = load_labelled_questions("dev"), load_labelled_questions("test")
    section = Section("Evaluation: dense, BM25 and hybrid retrieval; \"I don't know\"")

    # 1. Dev half: every chunking, every method.
    dev_rows, weight_rows, dev_results, (chosen_chunking, method, weight), sweep_seconds = _dev_sweep(
        encoder, docs, dev, quick)
    section.tables.append("**Dev half** (tune here)\n\n" + table(["chunk tokens/overlap", "method", *COLUMNS],
                                                                 dev_rows))
    chunkings = CHUNKINGS if not quick else [(DEFAULT_CHUNK_TOKENS, DEFAULT_OVERLAP)]
    section.tables.append("**Dev half: the weighted fusion's dense weight w** (recall@5 / MRR@10)\n\n" + table(
        ["w", *(f"{c}/{o}" for c, o in chunkings)], weight_rows))

    # 2. Test half, once, with what dev chose.
    test_results, n_chunks = _test_report(encoder, docs, test, chosen_chunking, weight)
    test_rows = [[m + (f" (w = {weight})" if m == "hybrid weighted" else ""), *(f"{r[c]:.3f}" for c in COLUMNS)]
                 for m, r in test_results.items()]
    section.tables.append(f"**Test half** (once; chunks {chosen_chunking[0]}/{chosen_chunking[1]}, "
                          f"{n_chunks:,} chunks)\n\n" + table(["method", *COLUMNS], test_rows))

    # 3. The abstention threshold.
    chosen, capped, rates, scores = _threshold(encoder, docs)
    shown = np.unique(np.concatenate([np.round(np.arange(0.20, 0.71, 0.05), 2), [chosen]]))
    grid = threshold_tradeoff(*scores["dev"], thresholds=shown)
    curve_rows = [[f"{t:.3f}" + (" (chosen)" if t == chosen else ""), f"{refused:.1%}", f"{answered:.1%}",
                   f"{refused + answered:.3f}"] for t, refused, answered in zip(*grid)]
    section.tables.append("**Abstention threshold** (dev half, best dense score, default chunking)\n\n"
                          + table(["threshold", "answerable wrongly refused", "unanswerable wrongly answered",
                                   "sum"], curve_rows))
    section.tables.append(table(
        ["threshold", "half", "answerable wrongly refused", "unanswerable wrongly answered"],
        [[f"{chosen:.3f}", split, f"{r[0]:.1%} ({round(r[0] * len(scores[split][0]))}/{len(scores[split][0])})",
          f"{r[1]:.1%} ({round(r[1] * len(scores[split][1]))}/{len(scores[split][1])})"]
         for split, r in rates.items()]))

    # 4. The generator told to say "I don't know".
    idk_rows, idk_raw, examples, per_answer = _idk_rates(
        encoder, docs, QUICK_IDK_QUESTIONS if quick else IDK_QUESTIONS)
    section.tables.append(f"**SmolLM2-135M-Instruct (packaged), greedy, {MAX_NEW} new tokens, top {IDK_K} "
                          "dense chunks in the prompt**\n\n"
                          + table(["questions", "n", *(f"says \"I don't know\", prompt style {s}" for s in IDK_STYLES)],
                                  idk_rows))

    section.notes += [
        f"Corpus: the 27 Python FAQ and HOWTO pages, all of them searched; labels: a chunk is relevant when it "
        f"overlaps the labelled answer's span. Dev {len(dev)} questions, test {len(test)}.",
        f"Chosen on dev (highest recall@5, then MRR@10; `comparison.choose_weight` for w): chunks "
        f"{chosen_chunking[0]}/{chosen_chunking[1]}, best method {method}, w = {weight} (the dense share). "
        f"Evaluating the 14 rankings of the dev half (4 methods, 11 weights: scoring, fusing and every metric "
        f"at {len(KS)} cut-offs) took {np.median(sweep_seconds) * 1e3:.0f} ms (median over chunkings; embedding "
        "the questions included).",
        "BM25: no stop words, k1 = 1.5, b = 0.75. RRF: c = 60 over each retriever's top 100.",
        f"Threshold rule: the smallest sum of the two error rates on dev (candidates halfway between "
        f"consecutive scores), ties to the lowest. Chosen {chosen:.5f} "
        f"(rag_helpers.DEFAULT_MIN_SCORE = {DEFAULT_MIN_SCORE}, the same rounded); "
        f"a cap of 5% wrongly refused would give {capped:.3f}.",
        "\"I don't know\" is counted when the answer contains \"I don't know\" or \"I do not know\"; "
        "style idk puts \"If the context does not contain the answer, answer 'I don't know'\" before the context. "
        f"{per_answer:.1f} s per answer. Examples: " + " | ".join(examples),
    ]
    section.raw = {"dev": dev_results, "test": {m: r.mean for m, r in test_results.items()},
                   "chosen": {"chunking": chosen_chunking, "method": method, "weight": weight},
                   "threshold": {"chosen": chosen, "capped_5pct": capped, "rates": rates,
                                 "scores": {s: [a.tolist(), u.tolist()] for s, (a, u) in scores.items()}},
                   "idk": idk_raw}
    section.goals += [
        Goal("DEFAULT_MIN_SCORE is what the rule picks on the dev half (to 3 decimals, same errors)",
             f"{chosen:.5f} vs {DEFAULT_MIN_SCORE}",
             abs(chosen - DEFAULT_MIN_SCORE) < 1e-3
             and error_rates(*scores["dev"], chosen) == error_rates(*scores["dev"], DEFAULT_MIN_SCORE)),
    ]
    return section


def main(argv: list[str]) -> int:
    quick = "--quick" in argv[1:]
    start = time.perf_counter()
    section = run(quick=quick)
    print()
    print(section.markdown())
    for goal in section.goals:
        print(f"- goal: {goal.text}: {goal.measured} ({'met' if goal.met else 'NOT met'})")
    print(f"\n({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
