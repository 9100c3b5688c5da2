"""The whole pipeline in one object (notebook 07): the one place that assembles the steps.

    question ──embed──▶ query vector ──search──▶ top-k documents
             ──prompt──▶ CONTEXT / QUESTION / ANSWER ──generate──▶ answer

``answer(question)`` is ``prepare`` (retrieve, then build the prompt that fits
the model's window) followed by ``generate``. Front ends (the command line,
the notebook explorer) call these two and never assemble steps themselves.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from sentence_transformers import SentenceTransformer

from ..answers import extractive_answer
from .._infra.validation import as_float_array, check_k, check_positive_int, check_query_text, check_texts
from .calibration import AUTO, calibrate, check_min_score
from .chunking import DEFAULT_CHUNK_TOKENS, DEFAULT_OVERLAP, Chunk, check_chunk_sizes, chunk_documents, chunk_sections
from .corpus import load_python_docs
from .documents import Document, load_documents, read_lines
from .embedding_cache import embed_cached, embedding_dimension
from .embeddings import embed, load_encoder
from .filters import NoMatchError, Where, chunk_metadata, filtered_search
from .folder_index import FolderIndex, update_folder_index
from .vector_store import StoreFilter, VectorStore
from .generation import DEFAULT_MAX_NEW_TOKENS, Generator, load_generator
from .grounding import keep_supported
from .prompts import PROMPT_STYLES, build_prompt, fit_documents, question_tokens
from .retrieval import Hit, search
from .vectors import check_unit_rows

__all__ = [
    "RAGPipeline",
    "RAGResult",
    "ContextTrimmedWarning",
    "ContextOverflowError",
    "SkippedFilesWarning",
    "ABSTAIN_ANSWER",
    "UNSUPPORTED_MODES",
    "EXTRACTIVE_SENTENCES",
    "CORPORA",
    "DEFAULT_CHUNK_TOKENS",
    "DEFAULT_OVERLAP",
    "DEFAULT_MAX_NEW_TOKENS",
    "check_chunk_sizes",
    "generate_real_answer",
    "read_lines",
    "Where",
    "NoMatchError",
]

#: The corpora shipped with the course, by the name ``from_corpus`` (and ``--corpus``) takes.
CORPORA: dict[str, Callable[[], list[Document]]] = {"python-docs": load_python_docs}

#: What ``RAGPipeline(unsupported=...)`` does with answer sentences nothing in the context supports:
#: "keep" them (the default), "flag" them (listed in ``RAGResult.unsupported``) or "drop" them.
UNSUPPORTED_MODES = ("keep", "flag", "drop")

#: Sentences in an extractive answer (``RAGPipeline.extract``): chosen on the dev half of the labelled
#: questions, with k, by the extractive answers' token F1 (``python -m benchmarks answers``).
EXTRACTIVE_SENTENCES = 3

#: What the pipeline answers, without asking the model, when no document
#: scores at least ``min_score``.
ABSTAIN_ANSWER = "I don't know: none of the documents is close enough to the question."


class ContextOverflowError(ValueError):
    """No prompt fits the context window (the question, or even the best document, is too long).

    ``hits`` holds what retrieval found, so that a front end can still show it.
    """

    def __init__(self, message: str, hits: list[Hit]) -> None:
        super().__init__(message)
        self.hits = hits


class SkippedFilesWarning(UserWarning):
    """Files in a folder given to ``from_files`` were not loaded; the message says which and why."""


class ContextTrimmedWarning(UserWarning):
    """Some retrieved documents were left out of the prompt to fit the context window."""


@dataclass
class RAGResult:
    """What one question went through: the hits, the prompt, and the answer."""

    question: str
    hits: list[Hit]  # (score, document) pairs, best first; hit.location says where from
    prompt: str | None  # None when the pipeline abstained (no prompt was sent)
    answer: str | None  # None until generated (``prepare``, or ``answer(generate=False)``)
    context: list[str] = field(default_factory=list)  # the documents in the prompt, best first
    abstained: bool = False  # True when the best score was below ``min_score``
    #: The answer's sentences that no sentence of the context supports (``unsupported="flag"`` or "drop").
    unsupported: list[str] = field(default_factory=list)

    @property
    def trimmed(self) -> int:
        """How many retrieved documents were left out of the prompt to fit the window."""
        return len(self.hits) - len(self.context) if self.prompt is not None else 0


class RAGPipeline:
    """Retrieval-augmented generation over a list of documents.

    >>> pipe = RAGPipeline(SAMPLE_DOCUMENTS, k=2)          # doctest: +SKIP
    >>> res = pipe.answer("which planet is the biggest?")  # doctest: +SKIP
    >>> res.hits[0]                                        # doctest: +SKIP
    (0.7672..., 'Jupiter is the largest planet in our solar system.')

    The documents are embedded once, here (``cache_embeddings=True`` keeps
    them on disk for the next pipeline over the same documents and model).
    The generator is loaded on the first answer that needs it (retrieval
    alone never pays for it) unless one is given. With ``min_score`` set, a
    question whose best document scores below it gets ``ABSTAIN_ANSWER``
    ("I don't know ...") without the model being asked. ``min_score="auto"``
    calibrates that threshold on these documents (``calibration.calibrate``:
    at most 5 % of generic off-topic questions answered) and keeps the value
    in ``pipe.min_score``; a number in [-1, 1] is used as it is. ``prompt_style`` is
    one of ``prompts.PROMPT_STYLES``: "plain" (the seed layout), "cite"
    (numbered documents, cite them) or "idk" (say "I don't know" when the
    context does not hold the answer). ``unsupported`` checks each answer
    sentence against the context (``grounding.keep_supported``): "keep"
    (no check), "flag" (list them in ``RAGResult.unsupported``) or "drop"
    (remove them; "I don't know" when none is left).
    """

    def __init__(
        self,
        documents: Sequence[str],
        k: int = 2,
        *,
        encoder: SentenceTransformer | None = None,
        generator: Generator | None = None,
        embedding_model: str | None = None,
        generator_model: str | None = None,
        device: str | None = None,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        cache_embeddings: bool = False,
        min_score: float | str | None = None,
        sources: Sequence[object] | None = None,
        prompt_style: str = "plain",
        unsupported: str = "keep",
        embeddings: np.ndarray | None = None,
        sections: Sequence[str | None] | None = None,
    ) -> None:
        self.documents = check_texts(documents)
        self.k = check_k(k, len(self.documents))
        self.max_new_tokens = check_positive_int(max_new_tokens, "max_new_tokens")
        min_score = check_min_score(min_score)
        if prompt_style not in PROMPT_STYLES:
            raise ValueError(f"prompt_style must be one of {sorted(PROMPT_STYLES)}, got {prompt_style!r}")
        self.prompt_style = prompt_style
        if unsupported not in UNSUPPORTED_MODES:
            raise ValueError(f"unsupported must be one of {UNSUPPORTED_MODES}, got {unsupported!r}")
        self.unsupported = unsupported
        if sources is not None and len(sources) != len(self.documents):
            raise ValueError(f"sources has {len(sources)} entries for {len(self.documents)} documents")
        self.sources = list(sources) if sources is not None else None
        if sections is not None and len(sections) != len(self.documents):
            raise ValueError(f"sections has {len(sections)} entries for {len(self.documents)} documents")
        #: The heading each document (chunk) starts under, or None: what ``Where(section=...)`` matches.
        self.sections = list(sections) if sections is not None else None
        #: What ``from_files(..., index=DIR)`` did to the index (``str()`` is the "Index DIR: ..." line), or None.
        self.index_update: FolderIndex | None = None
        #: The vector database answering the searches (``from_files(..., database=...)``), or None.
        self.store: VectorStore | None = None
        self.encoder = encoder if encoder is not None else load_encoder(embedding_model, device)
        if embeddings is not None:  # computed already (an index on disk): checked, not recomputed
            self.doc_embeddings, self.embedding_cache = self._checked_embeddings(embeddings), None
        # Opt-in: the cache writes a file under the user cache folder, and a
        # rebuilt pipeline over the same documents then skips the encoder.
        elif cache_embeddings:
            self.doc_embeddings, self.embedding_cache = embed_cached(self.documents, self.encoder, report=True)
        else:
            self.doc_embeddings, self.embedding_cache = embed(self.documents, self.encoder), None
        # self.doc_embeddings: (n_docs, dim) float32, unit rows
        #: How ``min_score`` was set: "auto" (calibrated here), "given", or None (never refuse).
        self.min_score_source = None if min_score is None else ("auto" if min_score == AUTO else "given")
        self.min_score: float | None = (calibrate(self.doc_embeddings, self.encoder)
                                        if min_score == AUTO else min_score)
        self._generator = generator
        self._generator_model = generator_model
        self._device = device

    @classmethod
    def from_files(
        cls,
        paths: str | os.PathLike | Sequence[str | os.PathLike] | Sequence[Document],
        *,
        chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
        overlap: int = DEFAULT_OVERLAP,
        k: int = 4,
        encoder: SentenceTransformer | None = None,
        embedding_model: str | None = None,
        device: str | None = None,
        index: str | os.PathLike | None = None,
        database: str | os.PathLike | VectorStore | None = None,
        **options,
    ) -> RAGPipeline:
        """A pipeline over files and folders (.txt .md .rst .pdf), cut into chunks of the encoder's tokens.

        ``paths`` may also be a list of ``Document`` (e.g. ``corpus.load_python_docs()``), or of
        anything with ``text`` and ``source`` (and optionally ``page``) attributes.
        Every chunk is at most ``chunk_tokens`` tokens, overlapping the one
        before by up to ``overlap``; each hit carries its ``Chunk``, so
        ``hit.location`` cites ``path:line`` (or the PDF page). Files skipped
        inside folders (binary, empty, unsupported, ...) are reported in one
        ``SkippedFilesWarning``. ``options`` go to ``RAGPipeline``.

        ``index``: a folder that keeps the chunks and their vectors between runs
        (``folder_index.update_folder_index``): built on first use; on every later call only new
        and changed files are chunked and only chunks never embedded before are embedded, and
        deleted files' chunks are removed. ``pipe.index_update`` says what was done
        (``str(pipe.index_update)``: ``Index DIR: N chunks (E embedded now, R reused, D removed)``).
        Without ``index`` everything is chunked and embedded here (``cache_embeddings=True``
        keeps the vectors of this exact list of chunks).

        ``database`` (with ``index``): answer from a vector database instead of the in-memory
        matrix: a folder (Qdrant, embedded in this process), a server's URL
        (``"http://localhost:6333"``: the one change to move past one machine) or a
        ``VectorStore``. It is brought in line with the index on every call (the new chunks
        upserted, the removed ones deleted; nothing is embedded twice) and searched exactly
        (flat): the same hits and scores as without it. ``where`` filters run inside it.
        """
        if database is not None and index is None:
            raise ValueError("database= is kept in line with an index: give index=DIR too")
        if index is not None:
            if isinstance(paths, Sequence) and not isinstance(paths, str) and paths and all(
                    _is_document(p) for p in paths):
                raise TypeError("index= keeps an index of files: give file and folder paths, not Documents")
            encoder = encoder if encoder is not None else load_encoder(embedding_model, device)
            update = update_folder_index(index, paths, encoder, chunk_tokens=chunk_tokens, overlap=overlap)
            if update.skipped.skipped:
                warnings.warn(update.skipped.report(), SkippedFilesWarning, stacklevel=2)
            options.pop("cache_embeddings", None)  # the index is the cache
            pipe = cls([c.text for c in update.chunks], min(check_k(k, 10**9), len(update)), encoder=encoder,
                       device=device, sources=update.chunks, sections=update.sections,
                       embeddings=update.vectors, **options)
            pipe.index_update = update
            if database is not None:
                pipe._attach_store(database)
            return pipe
        if isinstance(paths, Sequence) and paths and all(_is_document(p) for p in paths):
            # Documents already loaded: the package's, or ones a notebook's own cells defined.
            documents = [p if isinstance(p, Document) else Document(p.text, p.source, getattr(p, "page", None))
                         for p in paths]
        else:
            loaded = load_documents(paths)
            if loaded.skipped:
                warnings.warn(loaded.report(), SkippedFilesWarning, stacklevel=2)
            documents = loaded.documents
        encoder = encoder if encoder is not None else load_encoder(embedding_model, device)
        chunks: list[Chunk] = chunk_documents(
            documents, encoder, chunk_tokens, overlap, progress=len(documents) >= 100
        )
        k = min(check_k(k, 10**9), len(chunks))
        return cls([c.text for c in chunks], k, encoder=encoder, device=device, sources=chunks,
                   sections=chunk_sections(documents, chunks), **options)

    @classmethod
    def from_corpus(cls, name: str = "python-docs", **options) -> RAGPipeline:
        """A pipeline over a corpus shipped with the course (``CORPORA``), chunked as ``from_files`` does.

        ``"python-docs"``: the 27 FAQ and HOWTO pages of the Python 3.11
        documentation. ``options`` go to ``from_files``.
        """
        if name not in CORPORA:
            raise ValueError(f"unknown corpus {name!r}: choose one of {sorted(CORPORA)}")
        return cls.from_files(CORPORA[name](), **options)

    @property
    def generator(self) -> Generator:
        """The language model, loaded on first use."""
        if self._generator is None:
            self._generator = load_generator(self._generator_model, self._device)
        return self._generator

    @property
    def generator_loaded(self) -> bool:
        """Whether the language model is loaded yet (retrieval and abstentions never load it)."""
        return self._generator is not None

    def retrieve(self, question: str, k: int | None = None, *, where: Where | None = None) -> list[Hit]:
        """The ``k`` (default: the pipeline's) best documents as ``Hit(score, document)``, best first.

        ``where``: only chunks that match it (``filters.Where``: a glob on the file name, a file
        type, PDF pages, a section), filtered before the top-k: k hits whenever k chunks match,
        fewer only when fewer match. Raises ``NoMatchError`` (a ``ValueError``) when none does.
        """
        question = check_query_text(question, name="question")
        k = self.k if k is None else check_k(k, len(self.documents))
        rows = self._rows(where)
        return self._retrieve(question, k if rows is None else min(k, len(rows)), rows, where)

    def metadata(self) -> list[dict]:
        """``{"source", "page", "section"}`` of each document (chunk): what ``Where`` filters on."""
        if self.sources is None or not all(hasattr(s, "source") for s in self.sources):
            raise ValueError("these documents have no file names, pages or sections to filter on: "
                             "build the pipeline with RAGPipeline.from_files")
        return chunk_metadata(self.sources, self.sections)

    def _rows(self, where: Where | None) -> np.ndarray | None:
        if where is None:
            return None
        if not isinstance(where, Where):
            raise TypeError(f"where must be a Where, got {type(where).__name__} {where!r}")
        rows = where.rows(self.metadata())
        if rows.size == 0:
            raise NoMatchError(f"no chunk matches {where}: nothing to search "
                               f"({len(self.documents)} chunks from {len({s.source for s in self.sources})} files)")
        return rows

    def _retrieve(self, question: str, k: int, rows: np.ndarray | None = None,
                  where: Where | None = None) -> list[Hit]:
        # Inputs were checked once, where they came in; the query vector is
        # a unit row by construction, so the search kernel can trust it.
        query_vec = embed([question], self.encoder, what="question")[0]  # (dim,) float32, unit length
        if self.store is not None:
            keys, scores = self.store.search(query_vec, k, where=self._store_filter(rows, where))
            indices = np.array([self._row_of_key[key] for key in keys], dtype=np.int64)
        elif rows is None:
            indices, scores = search(query_vec, self.doc_embeddings, k)  # (k,) int64, (k,) float32
        else:
            indices, scores = filtered_search(query_vec, self.doc_embeddings, k, rows)
        return [
            Hit(score, self.documents[i], i, self.sources[i] if self.sources else None)
            for i, score in zip(indices.tolist(), scores.tolist())
        ]

    def prepare(self, question: str, k: int | None = None, *, fit: bool = True,
                max_new_tokens: int | None = None, where: Where | None = None) -> RAGResult:
        """Retrieve and build the prompt, without generating: ``answer`` is None.

        With ``fit=True`` the documents that would overflow the generator's
        context window (leaving ``max_new_tokens`` for the answer) are left
        out, least relevant first, with a ``ContextTrimmedWarning``; this
        loads the generator for its tokenizer. ``fit=False`` never does.
        Raises ``ContextOverflowError`` (a ``ValueError``) if no prompt fits.
        ``where``: search only the chunks it matches (see ``retrieve``).
        """
        hits = self.retrieve(question, k, where=where)
        if self.min_score is not None and hits[0].score < self.min_score:
            return RAGResult(question, hits, None, ABSTAIN_ANSWER, [], abstained=True)
        documents = [hit.document for hit in hits]
        if not fit:
            return RAGResult(question, hits, build_prompt(question, documents, self.prompt_style), None, documents)
        max_new_tokens = self._max_new_tokens(max_new_tokens)
        budget = self.generator.context_window - max_new_tokens
        count = self.generator.count_tokens
        try:
            kept, prompt = fit_documents(question, documents, count, budget, self.prompt_style)
        except ValueError as exc:
            # A document too long for the window on its own (one unbroken
            # run of text, say) must not block the hits that do fit.
            fitting = [d for d in documents if _fits_alone(question, d, count, budget, self.prompt_style)]
            if not fitting:
                raise ContextOverflowError(f"{self.generator.display_name}: {exc}", hits) from None
            kept, prompt = fit_documents(question, fitting, count, budget, self.prompt_style)
            too_long = [i + 1 for i, d in enumerate(documents) if d not in fitting]
            warnings.warn(
                f"retrieved document{'s' if len(too_long) > 1 else ''} "
                f"{', '.join(map(str, too_long))} (by rank) {'are' if len(too_long) > 1 else 'is'} too long "
                f"for {self.generator.display_name}'s context window on its own (left out of the prompt); "
                f"{len(kept)} of the other {len(fitting)} fit",
                ContextTrimmedWarning,
                stacklevel=2,
            )
        else:
            if len(kept) < len(documents):
                warnings.warn(
                    f"only the best {len(kept)} of {len(documents)} retrieved documents fit "
                    f"{self.generator.display_name}'s context window; the rest were left out of the prompt",
                    ContextTrimmedWarning,
                    stacklevel=2,
                )
        return RAGResult(question, hits, prompt, None, kept)

    def generate(
        self,
        prepared: RAGResult,
        *,
        max_new_tokens: int | None = None,
        stream: bool | Callable[[str], object] = False,
        **sampling,
    ) -> RAGResult:
        """The answer to a prepared question: ``prepared`` with ``answer`` filled in.

        ``stream=True`` prints the answer as it is written; a callable gets
        each piece instead. ``sampling``: the fields of ``generation.Sampling``.
        An abstention is returned as it is: the model is not asked.
        """
        if prepared.abstained or prepared.prompt is None:
            return prepared
        answer = _write(self.generator, prepared.prompt, self._max_new_tokens(max_new_tokens), stream, sampling)
        if self.unsupported == "keep" or not prepared.context:
            return replace(prepared, answer=answer)
        checked = keep_supported(answer, prepared.context, self.encoder, drop=self.unsupported == "drop")
        return replace(prepared, answer=checked.answer, unsupported=checked.unsupported)

    def answer(
        self,
        question: str,
        k: int | None = None,
        *,
        generate: bool = True,
        max_new_tokens: int | None = None,
        where: Where | None = None,
        **generation_options,
    ) -> RAGResult:
        """Retrieve, build the prompt and (unless ``generate=False``) generate the answer.

        ``prepare`` then ``generate``; ``generation_options`` go to
        ``generate`` (``stream``, ``do_sample``, ``temperature``, ``seed``, ...).
        ``where``: search only the chunks it matches (see ``retrieve``).
        """
        prepared = self.prepare(question, k, fit=generate, max_new_tokens=max_new_tokens, where=where)
        if not generate:
            return prepared
        return self.generate(prepared, max_new_tokens=max_new_tokens, **generation_options)

    def extract(self, question: str, k: int | None = None, *,
                n_sentences: int = EXTRACTIVE_SENTENCES, where: Where | None = None) -> RAGResult:
        """An answer without the language model: the retrieved chunks' sentences closest to the question.

        Notebook 11's ``extractive_answer`` over the ``k`` best chunks: every word of the answer is
        the documents' own, and no model is loaded. On the Python-docs test half it scores a higher
        token F1 against the gold answers than the offline SmolLM2-135M does from the same chunks
        (benchmarks/ANSWERS.md). Abstains below ``min_score`` like ``answer``.
        """
        n_sentences = check_positive_int(n_sentences, "n_sentences")
        hits = self.retrieve(question, k, where=where)
        if self.min_score is not None and hits[0].score < self.min_score:
            return RAGResult(question, hits, None, ABSTAIN_ANSWER, [], abstained=True)
        documents = [hit.document for hit in hits]
        return RAGResult(question, hits, None, extractive_answer(question, documents, self.encoder, n_sentences),
                         documents)

    def _attach_store(self, database: str | os.PathLike | VectorStore) -> None:
        """Bring the database in line with the index (upsert what it lacks, delete what is gone)."""
        store = database if isinstance(database, VectorStore) else VectorStore(
            database, self.doc_embeddings.shape[1])
        update = self.index_update
        # One point per chunk row: the content key alone is shared by equal texts in two files.
        row_keys = [hashlib.sha256(f"{key}\0{c.source}\0{c.page}\0{c.start}".encode("utf-8", "surrogatepass"))
                    .hexdigest() for key, c in zip(update.keys, update.chunks)]
        stored = store.keys()
        wanted = set(row_keys)
        gone = sorted(stored - wanted)
        if gone:
            store.delete(gone)
        new = [i for i, key in enumerate(row_keys) if key not in stored]
        if new:
            store.upsert([row_keys[i] for i in new], self.doc_embeddings[new],
                         [{"source": self.sources[i].source, "page": self.sources[i].page,
                           "section": self.sections[i]} for i in new])
        self.store = store
        self._row_of_key = {key: row for row, key in enumerate(row_keys)}
        #: What the last sync did to the database: (points upserted, points deleted).
        self.store_sync = (len(new), len(gone))

    def _store_filter(self, rows: np.ndarray | None, where: Where | None) -> StoreFilter | None:
        """The rows a ``Where`` matched, as the payload values the database compares."""
        if rows is None:
            return None
        metadata = self.metadata()
        chosen = [metadata[i] for i in rows.tolist()]
        return StoreFilter(
            sources=tuple(sorted({m["source"] for m in chosen})) if where.source or where.suffix else None,
            pages=where.pages,
            sections=tuple(sorted({m["section"] for m in chosen})) if where.section else None,
        )

    def _max_new_tokens(self, value: int | None) -> int:
        return self.max_new_tokens if value is None else check_positive_int(value, "max_new_tokens")

    def _checked_embeddings(self, embeddings: np.ndarray) -> np.ndarray:
        embeddings = as_float_array(embeddings, name="embeddings", ndims=(2,)).astype(np.float32, copy=False)
        dim = embedding_dimension(self.encoder)
        if embeddings.shape[0] != len(self.documents) or (dim is not None and embeddings.shape[1] != dim):
            raise ValueError(f"embeddings has shape {embeddings.shape}: expected ({len(self.documents)}, {dim}), "
                             f"one row per document, from this encoder")
        check_unit_rows(embeddings, name="embeddings")
        return embeddings



def _fits_alone(question: str, document: str, count_tokens: Callable[[str], int], budget: int,
                style: str) -> bool:
    try:
        fit_documents(question, [document], count_tokens, budget, style)
    except ValueError:
        return False
    return True


def _is_document(item: object) -> bool:
    return isinstance(item, Document) or (isinstance(getattr(item, "text", None), str)
                                          and isinstance(getattr(item, "source", None), str))


def generate_real_answer(
    question: str,
    documents: Sequence[str],
    generator: Generator,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    *,
    stream: bool | Callable[[str], object] = False,
    **sampling,
) -> str:
    """Steps 5 and 6 in one call: ask ``generator`` the ``question`` with ``documents`` as context.

    The prompt is ``build_prompt(question, documents)``; ``stream=True``
    prints the answer as it is written, a callable receives each new piece
    of text instead. ``sampling``: the fields of ``generation.Sampling``
    (greedy by default). Raises ``ValueError`` if the prompt and
    ``max_new_tokens`` do not fit the model's window.
    """
    max_new_tokens = check_positive_int(max_new_tokens, "max_new_tokens")
    question_alone = question_tokens(question, generator.count_tokens)
    if question_alone + max_new_tokens > generator.context_window:
        # Blame what is too long: no choice of documents can help here.
        raise ValueError(
            f"the question alone makes a prompt of {question_alone} tokens which, with max_new_tokens="
            f"{max_new_tokens}, is more than {generator.display_name}'s context window of "
            f"{generator.context_window} tokens: ask a shorter question"
        )
    return _write(generator, build_prompt(question, documents), max_new_tokens, stream, sampling)


def _print_piece(text: str) -> None:
    print(text, end="", flush=True)


def _write(generator: Generator, prompt: str, max_new_tokens: int,
           stream: bool | Callable[[str], object], sampling: dict) -> str:
    """The answer to ``prompt``: all at once, or read from ``Generator.stream`` piece by piece."""
    # A repetition loop ("::::" forty times) is cut where it starts: the rest is garbage.
    sampling = {"stop_repeats": True, **sampling}
    if not stream:
        return generator.generate(prompt, max_new_tokens, **sampling)
    on_text = _print_piece if stream is True else stream
    pieces = []
    # closing(): a Ctrl-C inside on_text stops the model's background thread at once.
    with contextlib.closing(generator.stream(prompt, max_new_tokens, **sampling)) as written:
        for piece in written:
            on_text(piece)
            pieces.append(piece)
    return "".join(pieces).strip()
