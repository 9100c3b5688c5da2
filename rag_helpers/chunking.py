"""Chunking: cutting long documents into pieces the encoder reads whole.

(Work in progress: the chunker is being written. The ``Chunk`` type is fixed.)
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Chunk"]


@dataclass(frozen=True)
class Chunk:
    """A piece of a Document: its text and where it lies in the source.

    ``text == document.text[start:end]``; ``line`` is the 1-based line of
    ``start`` in the document's text; ``page`` is the document's page (PDF).
    """

    text: str
    source: str
    start: int
    end: int
    line: int = 1
    page: int | None = None

    @property
    def location(self) -> str:
        """Where to cite it: ``path:line``, or ``path, page N`` for a PDF page."""
        return f"{self.source}, page {self.page}" if self.page is not None else f"{self.source}:{self.line}"
