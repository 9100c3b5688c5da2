"""Loading your own documents: text, Markdown, reStructuredText and PDF files.

(Work in progress: the loaders are being written. The ``Document`` type is fixed.)
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Document"]


@dataclass(frozen=True)
class Document:
    """One loaded text and where it came from.

    ``text`` is the file's text (a PDF gives one Document per page);
    ``source`` the path as the user gave it (or a corpus-relative name);
    ``page`` the 1-based PDF page, None for text files.
    """

    text: str
    source: str
    page: int | None = None
