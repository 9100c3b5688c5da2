"""'I don't know' on any corpus: `RAGPipeline(min_score="auto")` against the fixed DEFAULT_MIN_SCORE.

On three collections (the shipped Python docs, the 10-sentence planet sample, the Python 3.11 tutorial
from the Debian package python3.11-doc), both error rates of each threshold:

* answerable questions refused: the Python docs' labelled test half; the hand-written questions of
  benchmarks/data/abstention_questions.json for the other two;
* off-topic questions answered: the 80 held-out generic questions of
  rag_helpers/data/off_topic_questions.json (calibration never sees them) and the shipped off-topic
  unanswerable questions.

``python -m benchmarks abstention`` writes the section into benchmarks/ANSWERS.md.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import rag_helpers as rh
from rag_helpers.engine.calibration import MAX_OFF_TOPIC_ANSWERED, off_topic_questions
from rag_helpers.engine.corpus import load_labelled_questions, load_unanswerable_questions

from .common import Goal, Section, table

HERE = Path(__file__).resolve().parent
TUTORIAL = Path("/usr/share/doc/python3.11/html/_sources/tutorial")
TITLE = "\"I don't know\" on three collections: calibrated against fixed"


def _collections(encoder) -> dict:
    questions = json.loads((HERE / "data" / "abstention_questions.json").read_text())
    found = {
        "Python docs (FAQ + HOWTO)": (lambda: rh.RAGPipeline.from_corpus(
            "python-docs", encoder=encoder, cache_embeddings=True, min_score="auto"),
            [q.question for q in load_labelled_questions("test")]),
        "planet sample": (lambda: rh.RAGPipeline(rh.SAMPLE_DOCUMENTS, encoder=encoder, min_score="auto"),
                          questions["planets"]),
    }
    if TUTORIAL.is_dir():
        found["Python tutorial"] = (lambda: rh.RAGPipeline.from_files(
            [TUTORIAL], encoder=encoder, cache_embeddings=True, min_score="auto"),
            [q["question"] for q in questions["python-tutorial"]])
    return found


def run(quick: bool = False) -> Section:
    encoder = rh.load_encoder(device="cpu")
    off_topic = off_topic_questions("held_out") + [q.question for q in load_unanswerable_questions(kind="off-topic")]
    section = Section(TITLE)
    rows, raw, goals_met = [], {}, []
    for name, (build, answerable) in _collections(encoder).items():
        pipe = build()
        auto = pipe.min_score
        best_a = (rh.embed(answerable, encoder) @ pipe.doc_embeddings.T).max(axis=1)
        best_o = (rh.embed(off_topic, encoder) @ pipe.doc_embeddings.T).max(axis=1)
        for label, t in (("auto", auto), ("DEFAULT_MIN_SCORE", rh.DEFAULT_MIN_SCORE)):
            refused = float(np.mean(best_a < t))
            answered = float(np.mean(best_o >= t))
            rows.append([name, f"{len(pipe.documents):,}", label, f"{t:.3f}",
                         f"{refused:.1%} ({int((best_a < t).sum())}/{len(best_a)})",
                         f"{answered:.1%} ({int((best_o >= t).sum())}/{len(best_o)})"])
            if label == "auto":
                goals_met.append((name, 1 - refused, 1 - answered))
        raw[name] = {"auto": auto, "answerable": best_a.tolist(), "off_topic": best_o.tolist(),
                     "separating": [float(best_o.max()), float(best_a.min())]}
        print(f"  {name}: auto threshold {auto:.3f}", flush=True)
    section.tables.append(table(["collection", "chunks", "threshold", "value", "answerable refused",
                                 "off-topic answered"], rows))
    section.notes += [
        f"auto: the threshold that lets through {MAX_OFF_TOPIC_ANSWERED:.0%} of the "
        f"{len(off_topic_questions('calibration'))} generic off-topic calibration questions "
        "(rag_helpers.engine.calibration.calibrate; the rule is notebook 11's calibrate_min_score); the off-topic "
        f"questions measured here ({len(off_topic)}) are others, never used to calibrate.",
        "DEFAULT_MIN_SCORE: the fixed threshold chosen on the Python docs' dev half (notebook 09).",
    ]
    if not TUTORIAL.is_dir():
        section.notes.append("The Python tutorial was not measured: install the Debian package python3.11-doc.")
    for name, answered, refused in goals_met:
        section.goals.append(Goal(f"auto on {name}: >= 90% of answerable answered, >= 90% of off-topic refused",
                                  f"{answered:.1%} answered, {refused:.1%} refused",
                                  answered >= 0.9 and refused >= 0.9))
    section.raw = raw
    return section
