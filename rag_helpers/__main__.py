"""Command line: ``python -m rag_helpers "which planet is the biggest?" [-k 2] [--docs PATH ...]``.

A front end only: it reads the arguments and the documents, then asks
``RAGPipeline`` (``prepare``, then ``generate``) and prints what it gets.

Mistakes in what the user typed or pointed at are one line on stderr and exit
status 2, never a traceback; Ctrl-C is one line, "interrupted", and status 130.
"""
from __future__ import annotations

import argparse
import math
import sys
import warnings

from ._infra.devices import pick_device
from ._infra.models import ModelLoadError
from ._infra.validation import check_k, check_positive_int, check_query_text
from .engine.pipeline import (
    CORPORA,
    DEFAULT_CHUNK_TOKENS,
    DEFAULT_MAX_NEW_TOKENS,
    DEFAULT_OVERLAP,
    ContextTrimmedWarning,
    RAGPipeline,
    SkippedFilesWarning,
    Where,
    check_chunk_sizes,
    read_lines,
)
from .knowledge_base import SAMPLE_DOCUMENTS, SAMPLE_QUESTION


class UsageError(Exception):
    """A mistake in what the user typed or pointed at: one line, exit status 2."""


def _one_line_warnings(message, category, filename, lineno, line=None) -> str:
    return f"{category.__name__}: {message}\n"


def _read_lines(path: str) -> list[str]:
    """One document per non-blank line of ``path``: any text file (``.csv``, no extension, ``/dev/stdin``).

    Read with the checks of ``--docs``: invalid UTF-8 or binary content is
    an error naming the file and the byte offset, and a BOM is dropped. A
    PDF gives the lines of all its pages, and a warning says which.
    """
    if not path.strip():
        raise UsageError("--lines got an empty path: name a text file")
    documents = read_lines(path)
    if not documents:
        raise UsageError(f"--lines file {path} has no documents (one per line)")
    return documents


AUTO = "auto"


def _min_score(text: str) -> float | str:
    """``--min-score``'s value: "auto", or a finite number in [-1, 1] (the range of a cosine score)."""
    if text.strip().lower() == AUTO:
        return AUTO
    expected = f"expected 'auto' or a number from -1 to 1 (a cosine score), got {text!r}"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(expected) from None
    if math.isnan(value):
        raise argparse.ArgumentTypeError(f"{expected}: NaN would compare false with every score")
    if not -1.0 <= value <= 1.0:
        consequence = ("no document ever scores that much: every question would get \"I don't know\""
                       if value > 1 else "every document scores more: it would never say \"I don't know\"")
        raise argparse.ArgumentTypeError(f"{expected}: {consequence}")
    return value


def _pages(text: str) -> tuple[int, int]:
    """``--pages``: one page ``3`` or a range ``3-5`` (1-based, inclusive)."""
    first, _, last = text.strip().partition("-")
    try:
        pages = (int(first), int(last or first))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a page number or FIRST-LAST (e.g. 3-5), got {text!r}") from None
    if not 1 <= pages[0] <= pages[1]:
        raise argparse.ArgumentTypeError(f"expected pages from 1 with FIRST <= LAST, got {text!r}")
    return pages


def _where(args: argparse.Namespace) -> Where | None:
    """The filter the options ask for, or None."""
    given = dict(source=args.where, suffix=args.file_type, pages=args.pages, section=args.section)
    if all(value is None for value in given.values()):
        return None
    if args.docs is None and args.corpus is None:
        raise UsageError("--where, --file-type, --pages and --section filter the chunks of --docs or --corpus files")
    return Where(**given)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    """``_parser().parse_args``, with ``--min-score -inf`` read as the option and its value.

    argparse takes a word that starts with "-" for an option unless it looks
    like a plain negative number ("-0.5" it reads as a value, "-inf" or
    "-1e-3" it does not). A value given to ``--min-score`` is always a value,
    so it is joined to the option with "=" (``--min-score=-inf``, the form
    argparse reads as a value whatever it looks like) before parsing.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    for i in range(len(argv) - 1):
        if argv[i] == "--":  # what follows is positional
            break
        if argv[i] == "--min-score" and argv[i + 1].startswith("-"):
            argv[i:i + 2] = [f"--min-score={argv[i + 1]}"]
            break
    return _parser().parse_args(argv)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rag_helpers",
        description="Answer a question with retrieval-augmented generation over a small knowledge base.",
    )
    parser.add_argument("question", nargs="?", default=SAMPLE_QUESTION, help=f"default: {SAMPLE_QUESTION!r}")
    parser.add_argument("-k", type=int, default=2, help="how many documents to retrieve (default 2)")
    sources = parser.add_mutually_exclusive_group()
    sources.add_argument(
        "--docs", nargs="+", metavar="PATH",
        help="files and folders of .txt, .md, .rst and .pdf, cut into chunks; each hit cites its source",
    )
    sources.add_argument("--lines", metavar="FILE",
                         help="a text file with one document per line (any extension; /dev/stdin reads the input; "
                              "a PDF gives the lines of all its pages)")
    sources.add_argument(
        "--corpus", choices=sorted(CORPORA),
        help="the corpus shipped with the course: the Python 3.11 FAQ and HOWTO pages",
    )
    parser.add_argument("--chunk-tokens", type=int, default=DEFAULT_CHUNK_TOKENS,
                        help=f"with --docs/--corpus: chunk size in the encoder's tokens (default {DEFAULT_CHUNK_TOKENS})")
    parser.add_argument("--overlap", type=int, default=DEFAULT_OVERLAP,
                        help=f"with --docs/--corpus: tokens shared by neighbouring chunks (default {DEFAULT_OVERLAP})")
    parser.add_argument("--index", metavar="DIR",
                        help="with --docs: keep the chunks and their vectors in DIR, built on first use and "
                             "brought up to date on every run (only new and changed files are embedded; deleted "
                             "files' chunks are removed)")
    parser.add_argument("--database", metavar="DIR|URL",
                        help="with --index: answer from a Qdrant vector database kept in line with the index: a "
                             "folder (embedded, in this process) or a server's URL (http://localhost:6333)")
    parser.add_argument("--where", metavar="GLOB",
                        help="with --docs/--corpus: search only chunks of files whose name matches GLOB "
                             "(e.g. 'notes/2024/*', '*.md'; * also matches /)")
    parser.add_argument("--file-type", metavar="EXT", help="search only chunks of this file type (pdf, md, rst, txt)")
    parser.add_argument("--pages", type=_pages, metavar="N|FIRST-LAST",
                        help="search only chunks of these PDF pages (e.g. 3, or 3-5)")
    parser.add_argument("--section", metavar="GLOB",
                        help="search only chunks under a heading whose title matches GLOB (e.g. 'Install*')")
    parser.add_argument("--prompt-style", choices=["plain", "cite", "idk"], default="plain",
                        help="plain: the seed layout (default); cite: numbered documents, cited in the answer; "
                             "idk: the model is told to say \"I don't know\" when the documents do not say")
    parser.add_argument("--min-score", type=_min_score, default=AUTO, metavar="auto|SCORE",
                        help="answer \"I don't know\" without asking the model when no document scores this much: "
                             "a number from -1 to 1 (-1: always answer; e.g. rag_helpers.DEFAULT_MIN_SCORE, chosen "
                             "in notebook 09), or auto (default): calibrated on your documents so that about 5%% "
                             "of off-topic questions are answered")
    parser.add_argument("--embedding-model", help="default: $RAG_EMBEDDING_MODEL, else all-MiniLM-L6-v2")
    parser.add_argument("--generator-model", help="default: $RAG_GENERATOR_MODEL, else LiquidAI/LFM2-700M")
    parser.add_argument("--device", help="cpu, cuda or mps (default: the best available)")
    parser.add_argument(
        "--max-new-tokens", type=int, default=DEFAULT_MAX_NEW_TOKENS,
        help=f"the longest answer, in tokens (default {DEFAULT_MAX_NEW_TOKENS})",
    )
    parser.add_argument("--no-stream", action="store_true", help="print the answer at the end, not as it is written")
    parser.add_argument("--extractive", action="store_true",
                        help="answer without the language model: the retrieved chunks' sentences closest to the "
                             "question (no model is loaded; notebook 11 measures it against the model)")
    parser.add_argument("--unsupported", choices=["keep", "flag", "drop"], default="flag",
                        help="answer sentences that no sentence of the retrieved documents supports: flag them "
                             "after the answer (default), drop them from it (the answer is then printed at the "
                             "end), or keep them unchecked")
    return parser


def main(argv: list[str] | None = None) -> int:
    # One-line warnings while this command runs (the offline fallback notice
    # reads as one clear line), put back afterwards for in-process callers.
    previous = warnings.formatwarning
    warnings.formatwarning = _one_line_warnings
    try:
        return _main(_parse_args(argv))
    except (UsageError, ModelLoadError, ValueError, TypeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = previous


def _main(args: argparse.Namespace) -> int:
    # Check what the user typed before spending seconds on loading models.
    check_query_text(args.question, name="query")
    check_positive_int(args.max_new_tokens, "--max-new-tokens")
    check_chunk_sizes(args.chunk_tokens, args.overlap)
    files = args.docs is not None or args.corpus is not None
    where = _where(args)
    if args.index is not None and args.docs is None:
        raise UsageError("--index keeps an index of the files of --docs: give --docs PATH ...")
    if args.database is not None and args.index is None:
        raise UsageError("--database is kept in line with an index: give --index DIR too")
    if args.index is not None and not args.index.strip():
        raise UsageError("--index got an empty path: name a folder")
    if args.docs is not None and any(not path.strip() for path in args.docs):
        raise UsageError("--docs got an empty path: name files or folders")
    if not files:
        documents = _read_lines(args.lines) if args.lines is not None else SAMPLE_DOCUMENTS
        check_k(args.k, len(documents))
    device = pick_device(args.device)

    print(f"Using device: {device}")
    common = dict(embedding_model=args.embedding_model, generator_model=args.generator_model,
                  device=device, max_new_tokens=args.max_new_tokens, cache_embeddings=True,
                  prompt_style=args.prompt_style, min_score=args.min_score, unsupported=args.unsupported)
    if files:
        chunking = dict(chunk_tokens=args.chunk_tokens, overlap=args.overlap, k=args.k, **common)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SkippedFilesWarning)
            if args.docs is not None:
                pipe = RAGPipeline.from_files(args.docs, index=args.index, database=args.database, **chunking)
            else:
                pipe = RAGPipeline.from_corpus(args.corpus, **chunking)
        for warning in caught:  # the skipped files, said in a line or two; any other warning as it was
            if issubclass(warning.category, SkippedFilesWarning):
                print(warning.message, file=sys.stderr)
            else:
                warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
        if args.k > len(pipe.documents):
            print(f"(only {len(pipe.documents)} chunks: k is {len(pipe.documents)})", file=sys.stderr)
    else:
        pipe = RAGPipeline(documents, k=args.k, **common)
    if pipe.index_update is not None:
        print(pipe.index_update)
    if pipe.store is not None:
        print(f"Database {args.database}: {len(pipe.store)} chunks ({pipe.store_sync[0]} upserted, "
              f"{pipe.store_sync[1]} deleted)")
    if pipe.embedding_cache is not None and (files or args.lines is not None):  # the user's own documents
        print(pipe.embedding_cache, file=sys.stderr)
    if args.min_score == AUTO and pipe.min_score is not None:
        print(f"\"I don't know\" below score {pipe.min_score:.3f} (calibrated on these documents; "
              f"--min-score to change)", file=sys.stderr)
    if args.extractive:
        return _print_extractive(pipe.extract(args.question, where=where), pipe)
    # prepare() loads the generator (for its tokenizer), unless the question is
    # refused by --min-score: a fallback notice comes before the results.
    with warnings.catch_warnings():
        # Said below, with the documents it concerns.
        warnings.simplefilter("ignore", ContextTrimmedWarning)
        prepared = pipe.prepare(args.question, where=where)

    _print_hits(prepared.hits)
    if prepared.trimmed:
        print(f"(the prompt keeps the best {len(prepared.context)} of them: the rest do not fit "
              f"{pipe.generator.display_name}'s context window)")
    if prepared.abstained:
        print(f"\n--- Final Answer (no document scores {pipe.min_score:.3f} or more: the model was not asked) ---")
        print(prepared.answer)
        return 0
    print("\n--- Prompt Sent to LLM ---")
    print(prepared.prompt)
    print("--- Final Answer from LLM ---")
    stream = not args.no_stream and args.unsupported != "drop"  # dropping needs the whole answer first
    result = pipe.generate(prepared, stream=stream)
    print("" if stream else result.answer)
    if result.unsupported:
        verb = "left out" if args.unsupported == "drop" else "flagged"
        print(f"\n({len(result.unsupported)} sentence{'s' if len(result.unsupported) > 1 else ''} {verb}: "
              "no sentence of the retrieved documents supports "
              f"{'them' if len(result.unsupported) > 1 else 'it'}: "
              + " | ".join(repr(s) for s in result.unsupported) + ")")
    return 0


def _print_hits(hits) -> None:
    print(f"\n--- Retrieved Documents (Top {len(hits)}) ---")
    for hit in hits:
        if hit.location is None:
            print(f"Score: {hit.score:.4f} | Document: {hit.document}")
        else:
            preview = " ".join(hit.document.split())
            preview = preview if len(preview) <= 100 else preview[:99] + "…"
            print(f"Score: {hit.score:.4f} | Source: {hit.location} | {preview}")


def _print_extractive(result, pipe) -> int:
    _print_hits(result.hits)
    if result.abstained:
        print(f"\n--- Final Answer (no document scores {pipe.min_score:.3f} or more) ---")
    else:
        print("\n--- Extractive Answer (the documents' own sentences; no language model) ---")
    print(result.answer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
