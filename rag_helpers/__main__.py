"""Command line: ``python -m rag_helpers "which planet is the biggest?" [-k 2] [--docs FILE]``."""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from .embeddings import load_encoder
from .generation import DEFAULT_MAX_NEW_TOKENS, generate_real_answer, load_generator
from .knowledge_base import SAMPLE_DOCUMENTS, SAMPLE_QUESTION
from ._infra.models import ModelLoadError
from .pipeline import RAGPipeline
from .prompts import build_prompt
from ._infra.validation import check_k, check_query_text


def _one_line_warnings(message, category, filename, lineno, line=None) -> str:
    return f"{category.__name__}: {message}\n"


def _read_documents(path: str) -> list[str]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SystemExit(f"error: cannot read --docs file: {exc}") from exc
    documents = [line.strip() for line in lines if line.strip()]
    if not documents:
        raise SystemExit(f"error: --docs file {path} has no documents (one per line)")
    return documents


def main(argv: list[str] | None = None) -> int:
    # One-line warnings while this command runs (the offline fallback notice
    # reads as one clear line), put back afterwards for in-process callers.
    previous = warnings.formatwarning
    warnings.formatwarning = _one_line_warnings
    try:
        return _main(argv)
    finally:
        warnings.formatwarning = previous


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rag_helpers",
        description="Answer a question with retrieval-augmented generation over a small knowledge base.",
    )
    parser.add_argument("question", nargs="?", default=SAMPLE_QUESTION, help=f"default: {SAMPLE_QUESTION!r}")
    parser.add_argument("-k", type=int, default=2, help="how many documents to retrieve (default 2)")
    parser.add_argument("--docs", help="a text file with one document per line (default: the built-in facts)")
    parser.add_argument("--embedding-model", help="default: $RAG_EMBEDDING_MODEL, else all-MiniLM-L6-v2")
    parser.add_argument("--generator-model", help="default: $RAG_GENERATOR_MODEL, else LiquidAI/LFM2-700M")
    parser.add_argument("--device", help="cpu, cuda or mps (default: the best available)")
    parser.add_argument("--max-new-tokens", type=int, default=DEFAULT_MAX_NEW_TOKENS)
    parser.add_argument("--no-stream", action="store_true", help="print the answer at the end, not as it is written")
    args = parser.parse_args(argv)

    documents = _read_documents(args.docs) if args.docs else SAMPLE_DOCUMENTS
    try:
        # Check what the user typed before spending seconds on loading models.
        check_query_text(args.question, name="query")
        check_k(args.k, len(documents))
        generator = load_generator(args.generator_model, args.device)
        print(f"Using device: {generator.device}")
        encoder = load_encoder(args.embedding_model, generator.device)
        pipe = RAGPipeline(documents, k=args.k, encoder=encoder, generator=generator)
        hits = pipe.retrieve(args.question)
    except (ModelLoadError, ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    print(f"\n--- Retrieved Documents (Top {len(hits)}) ---")
    for score, document in hits:
        print(f"Score: {score:.4f} | Document: {document}")
    retrieved = [document for _, document in hits]
    print("\n--- Prompt Sent to LLM ---")
    print(build_prompt(args.question, retrieved))
    print("--- Final Answer from LLM ---")
    try:
        answer = generate_real_answer(
            args.question, retrieved, generator, args.max_new_tokens, stream=not args.no_stream
        )
    except ValueError as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 2
    print("" if not args.no_stream else answer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
