"""Is the answer right? Closed-book, RAG, oracle context and extraction, scored against gold answers.

The labelled Python-docs questions, whose gold answers are the FAQ entries' bodies (a median of about
100 words, so token F1 stays low even for a right short answer; token recall and ROUGE-L recall say how
much of the gold an answer covers). Settings are chosen on the dev half, then every condition runs once
on the test half (87 answerable questions, 23 unanswerable ones):

* closed-book: the offline model asked the bare question;
* rag / rag-hybrid: dense or hybrid (weighted BM25 + dense) retrieval of k chunks, the plain prompt;
* rag-cite / rag-idk: the cite and idk prompt styles over the dense chunks;
* oracle: the gold chunks themselves (what perfect retrieval would give), answerable questions only;
* extractive: no model, the retrieved sentences closest to the question;
* rag, supported only: rag's answers with the sentences that no context sentence supports removed.

What stopping repetition loops changes is measured on a dev sample (greedy decoding with and without).

Every condition abstains where ``RAGPipeline(min_score="auto")`` does. ``python -m benchmarks answers``
writes the section into benchmarks/ANSWERS.md, the per-answer records into
benchmarks/results/answers.json, and the plot benchmarks/answers.png.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

import rag_helpers as rh
from rag_helpers import answers as taught
from rag_helpers.engine.answer_eval import (AnswerReport, EvalQuestion, evaluate_answers, grounded_in_one_call,
                                           score_answer)
from rag_helpers.engine.comparison import ChunkRetrievers, choose_weight, sweep_weights
from rag_helpers.engine.corpus import answer_text, load_labelled_questions, load_python_docs, load_unanswerable_questions
from rag_helpers.engine.grounding import keep_supported
from rag_helpers.engine.pipeline import ABSTAIN_ANSWER
from rag_helpers.engine.retrieval import Hit

from .common import Goal, Section, table

HERE = Path(__file__).resolve().parent
TITLE = "Is the answer right? Answers scored against gold answers and their context"
MAX_NEW_TOKENS = 48     # about 35 words: enough for the gist of an answer, and a CPU can afford it
KS_TRIED = (2, 3, 4)
N_SENTENCES_TRIED = (1, 2, 3)
DEV_GENERATED = 8       # dev questions answered with and without the loop stop
#: Prompts per forward pass: on the 2-core CPU 16 answers 16 RAG prompts 1.1-1.2x faster than 8
#: (the generation part of RESULTS measures 1, 4, 8 and 16).
BATCH = 16
#: Answerable test questions answered: all 87 (a smaller number takes the first ones in the order of
#: sha256(id), a fixed, unbiased sample, for a quicker look).
TEST_ANSWERABLE = 87


def _questions(split: str) -> tuple[list, list[EvalQuestion]]:
    labelled = load_labelled_questions(split)
    unanswerable = load_unanswerable_questions(split)
    questions = ([EvalQuestion(q.question, answer_text(q), (q.source,), True) for q in labelled]
                 + [EvalQuestion(q.question, None, None, True) for q in unanswerable])
    return labelled, questions


def _hybrid(retrievers: ChunkRetrievers, questions: list[str], k: int, weight: float) -> dict[str, list[Hit]]:
    scores = retrievers.score(questions)
    ranked = scores.rank("hybrid weighted", k, weight=weight)
    return {q: [Hit(float(scores.dense[i, j]), retrievers.chunks[j].text, int(j), retrievers.chunks[j])
                for j in row.tolist()]
            for i, (q, row) in enumerate(zip(questions, ranked))}


def _oracle(retrievers: ChunkRetrievers, labelled: list, k: int) -> list[list[str]]:
    """Each question's gold chunks (those overlapping its answer), the most similar first, at most k."""
    scores = retrievers.score([q.question for q in labelled]).dense
    out = []
    for row, relevant in zip(scores, retrievers.relevance(labelled)):
        best = sorted(relevant, key=lambda j: (-row[j], j))[:k]
        out.append([retrievers.chunks[j].text for j in best])
    return out


def _extractive_sweep(pipe, questions: list[EvalQuestion]) -> dict[tuple[int, int], float]:
    """Mean token F1 of ``extractive_answer`` for every k of KS_TRIED and n of N_SENTENCES_TRIED.

    Each question's sentences are embedded once, for its largest k: the answer for a smaller k
    picks among the sentences of its first k chunks, as ``extractive_answer(question, chunks[:k], ...)``
    would (checked below on the first questions).
    """
    f1 = {(k, n): [] for k in KS_TRIED for n in N_SENTENCES_TRIED}
    for number, q in enumerate(questions):
        chunks = [h.document for h in pipe.retrieve(q.question, k=max(KS_TRIED))]
        sentences, chunk_of = [], []
        for c, chunk in enumerate(chunks):
            pieces = taught.split_sentences(chunk)
            sentences += pieces
            chunk_of += [c] * len(pieces)
        scores = rh.embed(sentences, pipe.encoder) @ rh.embed([q.question], pipe.encoder)[0]
        chunk_of = np.array(chunk_of)
        for k in KS_TRIED:
            keep = np.flatnonzero(chunk_of < k)
            order = keep[np.argsort(-scores[keep], kind="stable")]
            for n in N_SENTENCES_TRIED:
                answer = " ".join(sentences[i] for i in order[:n])
                if number < 3:
                    assert answer == taught.extractive_answer(q.question, chunks[:k], pipe.encoder, n)
                f1[k, n].append(taught.token_f1(answer, q.answer))
    return {key: float(np.mean(values)) for key, values in f1.items()}


#: condition -> how many of its answers were an earlier condition's answer to the same prompt.
REUSED: dict[str, int] = {}
#: Set to 1 to report only the conditions already computed (a run cut short for time).
CACHED_ONLY = os.environ.get("ANSWERS_CACHED_ONLY") == "1"


def _cached(name: str, settings: dict, compute, reused=lambda: 0):
    """``compute()``'s records, kept in results/raw/ under ``name`` while ``settings`` stay the same.

    A run of this part takes many minutes on a CPU; a run cut short resumes where it stopped.
    ``reused()`` (called after ``compute``) counts the answers reused from an earlier condition; it
    is kept with the records and printed.
    """
    settings = json.loads(json.dumps(settings))  # as saved: tuples become lists
    path = HERE / "results" / "raw" / f"answers_{name.replace(' ', '_').replace(',', '')}.json"
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved.get("settings") == settings:
            print(f"  {name}: from {path.name}", flush=True)
            REUSED[name] = saved.get("reused", 0)
            return saved["records"], saved["seconds"]
    if CACHED_ONLY:
        print(f"  {name}: not computed (ANSWERS_CACHED_ONLY=1)", flush=True)
        return None, None
    start = time.perf_counter()
    records = compute()
    seconds = time.perf_counter() - start
    REUSED[name] = reused()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"settings": settings, "records": records, "seconds": seconds,
                                "reused": REUSED[name]}, indent=1))
    print(f"  {name}: {len(records)} answers in {seconds:.0f} s ({REUSED[name]} reused)", flush=True)
    return records, seconds


class _SamePromptSameAnswer:
    """The generator, with each greedy answer kept by its prompt: a prompt already answered in this run
    (rag-hybrid retrieving the same chunks in the same order as rag, the oracle's gold chunks being
    rag's) gets the answer it got then, without generating it again.

    Greedy decoding is a function of the prompt: ``generate_batch`` gives every prompt the answer
    ``generate`` gives it alone, whatever else shares its batch (tests/test_generation_batch.py).
    ``reused`` counts the answers taken from the memo since the last ``take_reused()``.
    """

    def __init__(self, generator) -> None:
        self._generator = generator
        self._answers: dict[tuple, str] = {}
        self.reused = 0

    def __getattr__(self, name):
        return getattr(self._generator, name)

    def generate_batch(self, prompts, max_new_tokens, **options):
        key = lambda p: (p, max_new_tokens, options.get("stop_repeats", True))  # noqa: E731
        new = list(dict.fromkeys(p for p in prompts if key(p) not in self._answers))
        if new:
            for prompt, answer in zip(new, self._generator.generate_batch(new, max_new_tokens, **options)):
                self._answers[key(prompt)] = answer
        self.reused += len(prompts) - len(new)
        return [self._answers[key(p)] for p in prompts]

    def take_reused(self) -> int:
        reused, self.reused = self.reused, 0
        return reused


def run(quick: bool = False) -> Section:
    start_all = time.perf_counter()
    load_start = os.getloadavg()
    encoder = rh.load_encoder(device="cpu")
    docs = load_python_docs()
    retrievers = ChunkRetrievers.build(docs, encoder)
    pipe = rh.RAGPipeline([c.text for c in retrievers.chunks], k=KS_TRIED[0], encoder=encoder,
                          sources=retrievers.chunks, cache_embeddings=True, min_score="auto",
                          generator=_SamePromptSameAnswer(rh.load_generator(rh.PACKAGED_GENERATOR, device="cpu")))
    section = Section(TITLE)
    choices = []

    # ---- dev half: the hybrid weight, k and the extractive length, without the generator
    dev_labelled, dev = _questions("dev")
    dev_scores = retrievers.score([q.question for q in dev_labelled])
    weight = choose_weight(sweep_weights(dev_scores, retrievers.relevance(dev_labelled)))
    choices.append(f"Hybrid weight w = {weight} (the dense share; highest recall@5, then MRR@10, on dev).")
    answerable_dev = [q for q in dev if q.answer is not None]
    sweep, _ = _cached("dev extractive sweep", {"split": "dev", "ks": KS_TRIED, "ns": N_SENTENCES_TRIED},
                       lambda: [[k, n, f] for (k, n), f in _extractive_sweep(pipe, answerable_dev).items()])
    by_setting = {(k, n): f for k, n, f in sweep}
    k_chosen, n_sentences = max(by_setting, key=lambda kn: (round(by_setting[kn], 3), -kn[0], -kn[1]))
    pipe.k = k_chosen
    choices.append("k and the extractive baseline's length, by the extractive answers' F1 on the dev half "
                   "(how much of the gold the retrieved chunks' best sentences hold; no generator): "
                   + ", ".join(f"k={k} n={n}: {f:.3f}" for (k, n), f in by_setting.items())
                   + f"; chosen k = {k_chosen}, {n_sentences} sentence{'s' if n_sentences > 1 else ''}.")

    # ---- dev half: what stopping repetition loops changes (the generator, on a sample)
    sample = answerable_dev[:DEV_GENERATED if not quick else 4]
    loop = {}
    for stop in (False, True):
        settings = {"split": "dev", "n": len(sample), "k": k_chosen, "stop": stop, "max_new": MAX_NEW_TOKENS}
        records, seconds = _cached(f"dev rag stop={stop}", settings, lambda: evaluate_answers(
            pipe, sample, ["rag"], max_new_tokens=MAX_NEW_TOKENS, stop_repeats=stop, progress=True).records["rag"])
        if records is not None:
            loop[stop] = AnswerReport({"rag": records}, {"rag": seconds}).means()["rag"]
    choices.append(
        f"Stopping repetition loops (Generator.generate_batch(stop_repeats=True)), on {len(sample)} dev questions, "
        "rag: " + "; ".join(f"{'on' if stop else 'off'}: F1 {m['f1']:.3f}, grounded {m['grounded']:.3f}, "
                            f"{m['seconds_per_answer']:.1f} s per answer" for stop, m in loop.items())
        + ". On for every condition below.")

    # ---- test half, once
    test_labelled, test = _questions("test")
    keep = sorted(range(len(test_labelled)), key=lambda i: hashlib.sha256(test_labelled[i].id.encode()).hexdigest())
    keep = sorted(keep[:TEST_ANSWERABLE if not quick else 6])
    unanswerable = [q for q in test if q.answer is None][: None if not quick else 3]
    test_labelled = [test_labelled[i] for i in keep]
    answerable = [test[i] for i in keep]
    test = answerable + unanswerable
    oracle_docs = _oracle(retrievers, test_labelled[:len(answerable)], k_chosen)
    hybrid_hits = _hybrid(retrievers, [q.question for q in test], k_chosen, weight)
    common = dict(max_new_tokens=MAX_NEW_TOKENS, extractive_sentences=n_sentences, progress=True, batch_size=BATCH)
    base = {"split": "test", "n": len(test), "k": k_chosen, "max_new": MAX_NEW_TOKENS, "min_score": pipe.min_score,
            "batch": BATCH}
    report = AnswerReport(k=k_chosen, min_score=pipe.min_score)
    plan = {  # the most telling first: a run cut short still compares closed-book, RAG and the oracle
        "closed-book": lambda: evaluate_answers(pipe, test, ["closed-book"], **common).records["closed-book"],
        "rag": lambda: evaluate_answers(pipe, test, ["rag"], **common).records["rag"],
        "extractive": lambda: evaluate_answers(pipe, test, ["extractive"], **common).records["extractive"],
        "oracle": lambda: evaluate_answers(pipe, answerable, ["oracle"], oracle_documents=oracle_docs,
                                           **common).records["oracle"],
        "rag-idk": lambda: evaluate_answers(pipe, test, ["rag-idk"], **common).records["rag-idk"],
        "rag-hybrid": lambda: evaluate_answers(pipe, test, ["rag"], retrieve=hybrid_hits.__getitem__,
                                               **common).records["rag"],
        "rag-cite": lambda: evaluate_answers(pipe, test, ["rag-cite"], **common).records["rag-cite"],
    }
    missing = []
    pipe.generator.take_reused()
    for name, compute in plan.items():
        records, seconds = _cached(f"test {name}", dict(base, weight=weight), compute, pipe.generator.take_reused)
        if records is None:
            missing.append(name)
            continue
        report.records[name], report.seconds[name] = records, seconds
    # Supported only: rag's answers with the sentences no context sentence supports removed (no new generation).
    start = time.perf_counter()
    hits = [pipe.retrieve(q.question) for q in test]
    rows = []
    for found, row in zip(hits, report.records["rag"]):
        text = row["generated"]
        if not row["abstained"]:
            text = keep_supported(text, [h.document for h in found], encoder).answer
        rows.append(dict(row, generated=text))
    report.records["rag, supported only"] = _rescore(pipe, test, hits, rows)
    supported_seconds = time.perf_counter() - start
    report.seconds["rag, supported only"] = report.seconds["rag"] + supported_seconds

    means = report.means()
    order = [n for n in ["closed-book", "rag", "rag-hybrid", "rag-cite", "rag-idk", "oracle", "extractive",
                         "rag, supported only"] if n in report.records]
    cols = ["f1", "recall", "rouge_l_recall", "grounded", "context_precision", "citations_valid",
            "citations_supported", "answerable_refused", "unanswerable_answered", "seconds_per_answer"]
    section.tables.append(table(["condition", *cols], [
        [name, *("–" if means[name].get(c) is None else f"{means[name][c]:.3f}" for c in cols)] for name in order]))
    section.notes += choices
    if missing:
        section.notes.append(f"Not run (out of time in this session): {', '.join(missing)}.")
    section.notes += [
        f"Test half: {len(answerable)} answerable questions (gold: the FAQ entry's body) and "
        f"{len(test) - len(answerable)} unanswerable ones (oracle: the answerable ones only); the offline "
        f"SmolLM2-135M-Instruct, greedy, batches of {BATCH}, at most {MAX_NEW_TOKENS} new tokens; \"I don't know\" "
        f"below {pipe.min_score:.3f} (min_score=\"auto\") for every condition but closed-book and oracle; "
        f"grounded: the share of an answer's sentences whose best context sentence has cosine >= "
        f"{taught.SUPPORT_THRESHOLD}; grounded, context precision and citations over answered questions only.",
        "A prompt answered already in this run is not generated again (greedy answers depend on the prompt "
        "alone): answers reused from an earlier condition: "
        + ", ".join(f"{n} {REUSED.get('test ' + n, 0)}" for n in plan if n in report.records)
        + "; their seconds per answer are lower by that much.",
        f"Seconds per answer include retrieval and scoring; load average {load_start[0]:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end. This command took {time.perf_counter() - start_all:.0f} s; the "
        f"conditions it read from results/raw/ (computed by an earlier run, with the times above) are not rerun.",
    ]
    f1 = {name: means[name]["f1"] for name in order}
    test_seconds = sum(report.seconds[n] for n in plan if n in report.seconds) + supported_seconds
    section.goals += [
        Goal("the whole test-half experiment under 10 minutes (2-core CPU, issue 19)",
             f"{test_seconds:.0f} s ({test_seconds / 60:.1f} min) for the {len(order)} conditions",
             test_seconds < 600 and not missing),
        Goal("RAG's F1 above closed-book's (test half, offline)", f"{f1['rag']:.3f} vs {f1['closed-book']:.3f}",
             f1["rag"] > f1["closed-book"]),
        Goal("groundedness >= 0.9 for answered questions (the best generated condition)",
             ", ".join(f"{n}: {means[n]['grounded']:.3f}" for n in ("rag", "rag, supported only")),
             max(means[n]["grounded"] or 0 for n in ("rag", "rag, supported only")) >= 0.9),
    ]
    section.raw = {"k": k_chosen, "weight": weight, "n_sentences": n_sentences, "min_score": pipe.min_score,
                   "means": {n: means[n] for n in order}, "records": {n: report.records[n] for n in order}}
    if not quick:
        _plot(means, order, HERE / "answers.png")
        section.tables.append("![F1, ROUGE-L recall and groundedness per condition](answers.png)")
        (HERE / "results" / "answers.json").write_text(json.dumps(
            {"conditions": {n: means[n] for n in order}, "k": k_chosen, "min_score": pipe.min_score,
             "max_new_tokens": MAX_NEW_TOKENS, "generator": "SmolLM2-135M-Instruct (packaged)",
             "examples": {n: report.records[n][:3] for n in order}}, indent=1))
    return section


def _rescore(pipe, questions, hits, rows):
    """Score ``rows``' texts again as "rag" answers, with groundedness in one embedding call (as
    ``evaluate_answers`` does)."""
    contexts = [[h.document for h in found] if not row["abstained"] else [] for found, row in zip(hits, rows)]
    texts = [row["generated"] or ABSTAIN_ANSWER for row in rows]
    grounded = grounded_in_one_call(texts, contexts, pipe.encoder)
    return [score_answer(pipe, q, found, context, text, "rag", grounded=grounded.get(i))
            for i, (q, found, context, text) in enumerate(zip(questions, hits, contexts, texts))]


def _plot(means: dict, order: list[str], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [("f1", "token F1"), ("rouge_l_recall", "ROUGE-L recall"), ("grounded", "grounded")]
    x = np.arange(len(order))
    fig, ax = plt.subplots(figsize=(10, 4.2))
    for i, (key, label) in enumerate(metrics):
        ax.bar(x + (i - 1) * 0.27, [means[n].get(key) or 0 for n in order], 0.27, label=label)
    ax.set_xticks(x, order, rotation=25, ha="right")
    ax.set_ylabel("mean over the test half")
    ax.set_ylim(0, 1)
    ax.set_title("Answers of the offline SmolLM2-135M, scored against the FAQ's gold answers")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
