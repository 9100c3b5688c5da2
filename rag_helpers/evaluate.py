"""Evaluate answers on your own documents and questions.

    python -m rag_helpers.evaluate --docs notes/ --questions questions.jsonl [-k 4] [--json scores.json]

``questions.jsonl`` holds one JSON object per line:

    {"question": "How do I reset the router?", "answer": "Hold the reset button for 10 s.", "sources": ["router.md"]}
    {"question": "Who won the 2018 World Cup?", "answer": null}

``question`` is required; ``answer`` is the gold answer, or ``null`` for a question the documents
cannot answer (the right reply is "I don't know"); ``sources`` names the files that hold the answer.
Three conditions are run: closed-book (the model without documents), RAG (the pipeline, with "I don't
know" calibrated on your documents) and extractive (the retrieved sentences closest to the question, no
model). The table shows retrieval hits where sources are given, answer metrics where answers are, and
abstention where an answer is null. ``--json OUT`` writes every answer with its scores.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings

from ._infra.models import ModelLoadError
from .engine.answer_eval import QuestionFileError, evaluate_answers, read_questions
from .engine.pipeline import RAGPipeline

CONDITIONS = ("closed-book", "rag", "extractive")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rag_helpers.evaluate",
        description="Score closed-book, RAG and extractive answers on your documents and a JSON-lines "
                    "question file (question, optional answer or null, optional sources).",
    )
    parser.add_argument("--docs", nargs="+", required=True, metavar="PATH",
                        help="files and folders to answer from (.txt .md .rst .pdf)")
    parser.add_argument("--questions", required=True, metavar="FILE",
                        help="one JSON object per line: question, answer (text or null), sources")
    parser.add_argument("-k", type=int, default=4, help="documents retrieved per question (default 4)")
    parser.add_argument("--json", metavar="OUT", help="write every answer and score to this JSON file")
    parser.add_argument("--max-new-tokens", type=int, default=64, metavar="N",
                        help="longest answer, in tokens (default 64)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.k < 1:
        print("error: -k must be at least 1", file=sys.stderr)
        return 2
    if args.max_new_tokens < 1:
        print("error: --max-new-tokens must be at least 1", file=sys.stderr)
        return 2
    try:
        questions = read_questions(args.questions)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # skipped files are reported by the loader's summary
            pipe = RAGPipeline.from_files(args.docs, k=args.k, min_score="auto")
        print(f"{len(pipe.documents):,} chunks; {len(questions)} questions; \"I don't know\" below score "
              f"{pipe.min_score:.3f} (calibrated on these documents)", flush=True)
        report = evaluate_answers(pipe, questions, CONDITIONS, max_new_tokens=args.max_new_tokens,
                                  progress=True)
    except (QuestionFileError, ModelLoadError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print()
    print(report.table())
    if args.json:
        try:
            with open(args.json, "w", encoding="utf-8") as handle:
                json.dump(report.to_json(), handle, indent=1, ensure_ascii=False)
        except OSError as exc:
            print(f"error: cannot write {args.json}: {exc.strerror}", file=sys.stderr)
            return 2
        print(f"\nEvery answer and its scores: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
