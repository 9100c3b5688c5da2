"""Searches restricted by where a chunk came from: its file (a glob), its type, its PDF page, its section.

Notebook 12's ``where_rows`` and ``filtered_search``, with the arguments checked. The filter is applied
before the top-k, so a search for k hits returns k whenever at least k chunks match (filtering k hits
afterwards would return fewer, or none); the hits are the very ones a brute-force search over the
matching rows alone gives (``tests/test_filters.py``).

>>> Where(source="docs/v3/*", suffix=".md")            # doctest: +SKIP
>>> pipe.retrieve("how do I install it?", where=Where(section="Install*"))   # doctest: +SKIP
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag_helpers.incremental import where_rows

from .._infra.validation import check_k
from .retrieval import search

__all__ = ["Where", "NoMatchError", "chunk_metadata", "filtered_search"]


class NoMatchError(ValueError):
    """No chunk matches the filter: there is nothing to search."""


@dataclass(frozen=True)
class Where:
    """Which chunks a search may return; each condition given must hold (None: any).

    source : a glob on the file name as the chunk's source records it (``fnmatch``, case-sensitive;
        ``*`` also matches "/"): ``"notes/2024/*"``, ``"*.md"``, ``"*/install.rst"``.
    suffix : the file type, with or without the dot, any case: ``".pdf"``, ``"md"``.
    pages : ``(first, last)`` PDF pages, 1-based and inclusive, or one page number; chunks of
        text files (no page) never match.
    section : a glob on the title of the heading the chunk starts under (Markdown ``#`` titles,
        reStructuredText underlined titles): ``"Install*"``.
    """

    source: str | None = None
    suffix: str | None = None
    pages: tuple[int, int] | int | None = None
    section: str | None = None

    def __post_init__(self) -> None:
        for name in ("source", "section"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"Where.{name} must be a non-empty glob string, got {value!r}")
        if self.suffix is not None:
            if not isinstance(self.suffix, str) or not self.suffix.strip(".").strip():
                raise ValueError(f"Where.suffix must be a file type such as '.pdf', got {self.suffix!r}")
            object.__setattr__(self, "suffix", "." + self.suffix.strip().lstrip(".").lower())
        if self.pages is not None:
            pages = (self.pages, self.pages) if _is_int(self.pages) else self.pages
            if (not isinstance(pages, (tuple, list)) or len(pages) != 2 or not all(map(_is_int, pages))
                    or not 1 <= pages[0] <= pages[1]):
                raise ValueError(f"Where.pages must be a page number or (first, last) with "
                                 f"1 <= first <= last, got {self.pages!r}")
            object.__setattr__(self, "pages", (int(pages[0]), int(pages[1])))

    def rows(self, metadata: Sequence[dict]) -> np.ndarray:
        """The rows whose metadata match, (m,) int64 increasing; metadata[i] = ``{"source", "page", "section"}``."""
        return where_rows(list(metadata), source=self.source, suffix=self.suffix, pages=self.pages,
                          section=self.section)

    def __str__(self) -> str:
        said = [f"{name}={value!r}" for name in ("source", "suffix", "pages", "section")
                if (value := getattr(self, name)) is not None]
        return "Where(" + ", ".join(said) + ")"


def chunk_metadata(chunks: Sequence, sections: Sequence[str | None] | None = None) -> list[dict]:
    """``{"source", "page", "section"}`` for each chunk (anything with ``source`` and ``page``)."""
    sections = [None] * len(chunks) if sections is None else sections
    return [{"source": c.source, "page": c.page, "section": s} for c, s in zip(chunks, sections)]


def filtered_search(query: np.ndarray, docs: np.ndarray, k: int,
                    rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``rag_helpers.search`` among ``docs[rows]`` only; the hits as row numbers of ``docs``, best first.

    query (d,) unit row; docs (n, d) unit rows; rows (m,) int64, increasing, from ``Where.rows``.
    Returns min(k, m) indices (int64) and scores (float32). Raises ``NoMatchError`` if m == 0.
    """
    rows = np.asarray(rows)
    if rows.ndim != 1 or (rows.size and (rows.dtype.kind not in "iu" or rows.min() < 0 or rows.max() >= len(docs))):
        raise ValueError(f"rows must be a 1-d array of row numbers in [0, {len(docs)}), got {rows!r}")
    if rows.size == 0:
        raise NoMatchError("no chunk matches the filter: nothing to search")
    k = check_k(k, 10**12)
    if rows.size == len(docs):  # every row matches: the plain search, no copy
        return search(query, docs, min(k, len(docs)))
    indices, scores = search(query, docs[rows], min(k, rows.size))
    return rows[indices], scores


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
