"""Loading your own documents: text, Markdown, reStructuredText and PDF files.

``load_documents(paths)`` takes files and folders and gives back ``Document``
objects (notebook 08's, ``rag_helpers/documents.py``; on a folder of valid text
files it returns what that notebook's ``read_text_files`` does): one per text file, one per PDF page. Folders are read recursively, in
sorted order, so the same folder always gives the same documents in the same
order.

Nothing is dropped without a word:

- a path that does not exist raises ``FileNotFoundError``;
- a file you name yourself that cannot be loaded (unsupported type, binary,
  empty, invalid UTF-8, too large, unreadable, an encrypted PDF) raises
  ``DocumentError``, which says which file and why (for invalid UTF-8, the byte
  offset and line of the first bad byte);
- inside a folder, such files are skipped and *reported*: the result's
  ``skipped`` list says what and why, and ``result.report()`` sums it up in a
  line or two (``skipped 3 files: 1 binary (a.bin), 1 empty (e.txt), ...``).
  Hidden entries (names starting with a dot, such as ``.git``) are not read,
  and the report says so too.

Text files are decoded as UTF-8 (a leading byte-order mark is dropped); the
text is kept exactly as in the file otherwise (``\\r\\n`` included), so a
character offset in it maps back to a line of the file. A file that holds only
whitespace or invisible characters (zero-width spaces, byte-order marks, soft
hyphens, control characters; see ``is_blank``) counts as empty: there is
nothing to retrieve.

Size limit: ``MAX_FILE_BYTES`` (100 MiB) per file, to stop a folder with a
disk image or a data dump in it from filling the memory; a text file that size
is already some 25 million tokens, hours of embedding on a laptop CPU. Pass
``max_bytes=None`` to lift it, or another number to move it.
"""
from __future__ import annotations

import io
import os
import stat
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

# The Document of notebook 08, not a copy: ``text``, ``source`` (the path as the
# user gave it, or a corpus-relative name), ``page`` (1-based PDF page, None for text).
from rag_helpers.documents import Document

__all__ = [
    "Document",
    "DocumentError",
    "LoadResult",
    "MAX_FILE_BYTES",
    "SUPPORTED_SUFFIXES",
    "Skipped",
    "is_blank",
    "load_documents",
]

#: The file types ``load_documents`` reads (the suffix is compared in lower case).
SUPPORTED_SUFFIXES = (".md", ".pdf", ".rst", ".txt")

#: Files larger than this (in bytes) are refused; see the module docstring.
MAX_FILE_BYTES = 100 * 2**20


class DocumentError(ValueError):
    """A file that cannot be loaded; ``path`` and ``reason`` say which and why."""

    def __init__(self, path: str, reason: str, detail: str = "") -> None:
        self.path, self.reason, self.detail = path, reason, detail
        super().__init__(f"{path}: {reason}" + (f" ({detail})" if detail else ""))


@dataclass(frozen=True)
class Skipped:
    """A file, folder or PDF page that was not loaded, and why.

    ``reason`` is a short category ("binary", "empty", "hidden", ...), the same
    for every file skipped for that reason; ``detail`` is this file's specifics
    ("NUL byte at offset 12").
    """

    path: str
    reason: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class LoadResult:
    """What ``load_documents`` found: the documents, and what it skipped."""

    documents: list[Document] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def report(self, max_names: int = 3) -> str:
        """One line per kind of skip, or "" when nothing was skipped.

        >>> LoadResult([], [Skipped("a.bin", "binary"), Skipped("e.txt", "empty")]).report()
        'skipped 2 files: 1 binary (a.bin), 1 empty (e.txt)'
        """
        hidden = [s for s in self.skipped if s.reason == "hidden"]
        pages = [s for s in self.skipped if s.reason == "PDF page without text"]
        files = [s for s in self.skipped if s.reason not in ("hidden", "PDF page without text")]
        lines = []
        if files:
            by_reason: dict[str, list[str]] = {}
            for s in files:
                by_reason.setdefault(s.reason, []).append(s.path)
            parts = [f"{len(names)} {reason} ({_some(names, max_names)})" for reason, names in by_reason.items()]
            lines.append(f"skipped {len(files)} file{'' if len(files) == 1 else 's'}: " + ", ".join(parts))
        if pages:
            per_file = Counter(s.path for s in pages)
            lines.append(f"skipped {len(pages)} PDF page(s) without text (scanned images need OCR first): "
                         + _some([f"{path} ({n})" for path, n in per_file.items()], max_names))
        if hidden:
            lines.append(f"ignored {len(hidden)} hidden entr{'y' if len(hidden) == 1 else 'ies'} "
                         f"({_some([s.path for s in hidden], max_names)})")
        return "\n".join(lines)


def _some(names: list[str], most: int) -> str:
    """``a, b, c`` or ``a, b, c and 4 more``."""
    shown = ", ".join(names[:most])
    return shown if len(names) <= most else f"{shown} and {len(names) - most} more"


# Characters that carry nothing to read. Whitespace is caught by str.isspace();
# the Unicode categories are Cc (control), Cf (format: zero-width space U+200B,
# joiners, BOM U+FEFF, soft hyphen U+00AD, ...), the separators Z*, combining
# marks (Mn, Me) with no letter to sit on, and private-use characters (Co: the
# icons of symbol fonts, in PDFs). A few characters are listed by hand: letters
# that render as blanks (Hangul fillers, the blank Braille pattern) and the
# replacement character U+FFFD left by a failed conversion. all-MiniLM-L6-v2's
# tokenizer drops all of these but the blank letters, so "not blank" means
# "gives at least one token" (a test checks it on every Unicode character).
_NOTHING_TO_READ_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "Me", "Co"})
_NOTHING_TO_READ_CHARACTERS = frozenset("\u115f\u1160\u2800\u3164\uffa0\ufffd")


def is_blank(text: str) -> bool:
    """True if ``text`` holds nothing to read: only whitespace, invisible characters (see above), or nothing."""
    return all(ch.isspace() or ch in _NOTHING_TO_READ_CHARACTERS
               or unicodedata.category(ch) in _NOTHING_TO_READ_CATEGORIES for ch in text)


def load_documents(paths: str | os.PathLike | Iterable[str | os.PathLike], *,
                   max_bytes: int | None = MAX_FILE_BYTES) -> LoadResult:
    """Load text, Markdown, reStructuredText and PDF files, and folders of them.

    ``paths`` is one path or a list of paths (files and folders, in the order
    given; each folder is walked recursively, entries sorted by name). Returns
    a ``LoadResult``: ``.documents`` (one per text file, one per PDF page with
    text) and ``.skipped`` (what was passed over inside folders, and why;
    ``.report()`` prints it). A file reached twice (named twice, or also inside
    a named folder) is loaded once; the second time is reported.

    Raises ``FileNotFoundError`` for a path that does not exist,
    ``DocumentError`` for a named file that cannot be loaded, and
    ``DocumentError`` too when nothing at all could be loaded.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not isinstance(paths, Iterable):
        raise TypeError(f"paths must be a path or a list of paths, got {type(paths).__name__}")
    paths = list(paths)
    if not paths:
        raise ValueError("paths is empty: give at least one file or folder")
    for given in paths:
        if not isinstance(given, (str, os.PathLike)):
            raise TypeError(f"paths must be file or folder paths, got {type(given).__name__} {given!r}")
    if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1):
        raise ValueError(f"max_bytes must be a positive integer or None, got {max_bytes!r}")
    # Every path is checked before any is read: a typo fails at once, not after minutes of PDFs.
    for path in map(Path, paths):
        if not path.exists():
            raise FileNotFoundError(f"no such file or folder: {str(path)!r}")

    result = LoadResult()
    seen: set[Path] = set()  # resolved paths already read: no file twice, no symlink loops
    for path in map(Path, paths):
        if path.is_dir():
            _load_folder(path, result, seen, max_bytes)
        else:
            # A file named by the user: any problem is an error, not a skip.
            problem = _load_file(path, result, seen, max_bytes)
            if problem is not None and problem.reason == "already loaded":
                result.skipped.append(problem)
            elif problem is not None:
                raise DocumentError(problem.path, problem.reason, problem.detail)
    if not result.documents:
        what = ", ".join(repr(str(p)) for p in paths)
        report = result.report()
        raise DocumentError(what, "no documents could be loaded", report.replace("\n", "; ") or "nothing in it")
    return result


def _load_folder(folder: Path, result: LoadResult, seen: set[Path], max_bytes: int | None) -> None:
    """Walk ``folder`` in sorted order; every file that fails goes to ``result.skipped``."""
    real = folder.resolve()
    if real in seen:
        result.skipped.append(Skipped(str(folder), "already loaded", "a folder reached twice (a symbolic link?)"))
        return
    seen.add(real)
    try:
        entries = sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError as err:
        result.skipped.append(Skipped(str(folder), "unreadable", f"{type(err).__name__}: {err.strerror or err}"))
        return
    for entry in entries:
        if entry.name.startswith("."):
            result.skipped.append(Skipped(str(entry), "hidden"))
        elif entry.is_dir():
            _load_folder(entry, result, seen, max_bytes)
        else:
            problem = _load_file(entry, result, seen, max_bytes)
            if problem is not None:
                result.skipped.append(problem)


def _load_file(path: Path, result: LoadResult, seen: set[Path], max_bytes: int | None) -> Skipped | None:
    """Append the file's documents to ``result``; return why not, if it cannot be loaded."""
    name = str(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        return Skipped(name, "unsupported extension",
                       f"{suffix or 'no extension'}; supported: {' '.join(SUPPORTED_SUFFIXES)}")
    try:
        info = path.stat()
    except OSError as err:  # a broken symbolic link, for one
        return Skipped(name, "unreadable", f"{type(err).__name__}: {err.strerror or err}")
    if not stat.S_ISREG(info.st_mode):
        # Reading a FIFO or a device would block or never end.
        return Skipped(name, "not a regular file")
    if max_bytes is not None and info.st_size > max_bytes:
        return Skipped(name, "too large", f"{info.st_size:,} bytes, the limit is {max_bytes:,}")
    real = path.resolve()
    if real in seen:
        return Skipped(name, "already loaded")
    seen.add(real)
    try:
        data = path.read_bytes()
    except OSError as err:
        return Skipped(name, "unreadable", f"{type(err).__name__}: {err.strerror or err}")
    if suffix == ".pdf":
        return _load_pdf(name, data, result)
    return _load_text(name, data, result)


def _load_text(name: str, data: bytes, result: LoadResult) -> Skipped | None:
    """Decode a text file as UTF-8: one Document, or the reason it is refused."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return Skipped(name, "binary", "a UTF-16 byte-order mark: save the file as UTF-8")
    nul = data.find(b"\x00")
    if nul >= 0:
        return Skipped(name, "binary", f"NUL byte at offset {nul}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        return Skipped(name, "invalid UTF-8",
                       f"byte 0x{data[err.start]:02x} at offset {err.start}, line {line}; save the file as UTF-8")
    text = text.removeprefix("\ufeff")  # the UTF-8 byte-order mark some editors write
    if is_blank(text):
        return Skipped(name, "empty", "no bytes" if not data else "only whitespace or invisible characters")
    result.documents.append(Document(text=text, source=name))
    return None


def _load_pdf(name: str, data: bytes, result: LoadResult) -> Skipped | None:
    """One Document per PDF page that has text; pages without text are reported."""
    # pypdf is imported here: only PDF users pay for it.
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, PyPdfError

    if not data:
        return Skipped(name, "empty", "no bytes")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            # Many PDFs are encrypted with an empty password (printing or copying
            # restrictions only): those open. The others need their password.
            return Skipped(name, "encrypted PDF", "it needs a password; save a decrypted copy")
        n_pages = len(reader.pages)
    except DependencyError as err:
        return Skipped(name, "encrypted PDF", f"{err}; pip install cryptography")
    except (PyPdfError, ValueError, KeyError, TypeError) as err:  # what pypdf raises on a damaged file
        return Skipped(name, "not a readable PDF", f"{type(err).__name__}: {err}")

    documents, blank_pages = [], []
    for number in range(1, n_pages + 1):
        try:
            text = reader.pages[number - 1].extract_text()
        except (PyPdfError, ValueError, KeyError, TypeError) as err:
            result.skipped.append(Skipped(name, "PDF page unreadable", f"page {number}: {type(err).__name__}: {err}"))
            continue
        if is_blank(text):
            blank_pages.append(Skipped(name, "PDF page without text", f"page {number}"))
        else:
            documents.append(Document(text=text, source=name, page=number))
    if not documents:
        return Skipped(name, "empty", f"no text in any of its {n_pages} page(s); a scanned PDF needs OCR first")
    result.documents.extend(documents)
    result.skipped.extend(blank_pages)
    return None
