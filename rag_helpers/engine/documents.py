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

File names are kept as given, except a name that is not valid UTF-8 (a
file from an old archive): Python reads its bytes as lone surrogates, which
cannot be printed or saved, so its ``source`` shows them escaped,
``caf\\xe9.txt``.

PDFs: what pypdf reports on a damaged file (it repairs what it can) is said
as one ``PdfWarning`` naming the file, not printed raw.

``read_lines(path)`` reads any one text file (any extension, or none, even
``/dev/stdin``) or a PDF (all its pages) as one document per line, for ``--lines``.

Size limit: ``MAX_FILE_BYTES`` (100 MiB) per file, to stop a folder with a
disk image or a data dump in it from filling the memory; a text file that size
is already some 25 million tokens, hours of embedding on a laptop CPU. Pass
``max_bytes=None`` to lift it, or another number to move it.
"""
from __future__ import annotations

import errno
import io
import logging
import os
import stat
import unicodedata
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
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
    "PdfWarning",
    "SUPPORTED_SUFFIXES",
    "Skipped",
    "is_blank",
    "list_files",
    "load_bytes",
    "load_documents",
    "read_lines",
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


class PdfWarning(UserWarning):
    """A PDF that pypdf could read only in part (it said so), or that ``read_lines`` read page by page."""


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
    #: The source names of the files named directly (not found in a folder): their problems are errors.
    named: set[str] = field(default_factory=set, repr=False, compare=False)

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
        _check_exists(path)

    result = LoadResult()
    for path, name in list_files(paths, result, max_bytes=max_bytes, checked=True):
        try:
            data = path.read_bytes()
        except OSError as err:
            problem = Skipped(name, "unreadable", f"{type(err).__name__}: {err.strerror or err}")
        else:
            problem = load_bytes(name, path.suffix.lower(), data, result)
        if problem is not None and name in result.named:
            raise DocumentError(problem.path, problem.reason, problem.detail)
        if problem is not None:
            result.skipped.append(problem)
    if not result.documents:
        what = ", ".join(repr(str(p)) for p in paths)
        report = result.report()
        raise DocumentError(what, "no documents could be loaded", report.replace("\n", "; ") or "nothing in it")
    return result


def _display_name(path: str | os.PathLike) -> str:
    """``str(path)``, printable: the bytes of a name that is not UTF-8 shown as ``\\xe9``.

    Python decodes such a name's bytes to lone surrogates (``'\\udce9'``, the
    "surrogateescape" error handler), which cannot be printed, encoded or
    saved; every message and ``Document.source`` uses this form instead.
    """
    name = os.fspath(path)
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        try:
            return os.fsencode(name).decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:  # a surrogate that no file name's bytes give ('\ud800')
            return name.encode("utf-8", "backslashreplace").decode("utf-8")


def _check_exists(path: Path) -> None:
    """Raise ``FileNotFoundError`` (or ``OSError``, for a loop of symbolic links) saying what is wrong with ``path``."""
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        if path.is_symlink():
            raise FileNotFoundError(f"{str(path)!r} is a broken symbolic link: it points to "
                                    f"{os.readlink(path)!r}, which does not exist") from None
        raise FileNotFoundError(f"no such file or folder: {str(path)!r}") from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise OSError(f"{str(path)!r} is a symbolic link in a loop (following it leads back to itself, "
                          f"never to a file)") from None
        raise OSError(f"{str(path)!r} cannot be read: {err.strerror or err}") from None


def list_files(paths: Iterable[str | os.PathLike], result: LoadResult, *,
               max_bytes: int | None = MAX_FILE_BYTES, checked: bool = False) -> Iterator[tuple[Path, str]]:
    """The files ``load_documents(paths)`` would read, as ``(path, source name)``, without reading them.

    Lazily, in order: folders are walked in sorted order; what is passed over inside them goes to
    ``result.skipped`` as the walk meets it; a named file that cannot be read raises ``DocumentError``
    (its name is added to ``result.named``). ``checked``: the paths were checked already.
    """
    paths = list(paths)
    if not checked:
        for path in map(Path, paths):
            _check_exists(path)
    seen: set[Path] = set()  # resolved paths already listed: no file twice, no symlink loops
    for path in map(Path, paths):
        if path.is_dir():
            yield from _walk_folder(path, result, seen, max_bytes)
            continue
        # A file named by the user: any problem is an error, not a skip.
        problem = _check_file(path, seen, max_bytes)
        if problem is not None and problem.reason == "already loaded":
            result.skipped.append(problem)
        elif problem is not None:
            raise DocumentError(problem.path, problem.reason, problem.detail)
        else:
            result.named.add(_display_name(path))
            yield path, _display_name(path)


def _walk_folder(folder: Path, result: LoadResult, seen: set[Path],
                 max_bytes: int | None) -> Iterator[tuple[Path, str]]:
    """Walk ``folder`` in sorted order; every file that cannot be read goes to ``result.skipped``."""
    real = folder.resolve()
    if real in seen:
        result.skipped.append(Skipped(_display_name(folder), "already loaded",
                                      "a folder reached twice (a symbolic link?)"))
        return
    seen.add(real)
    try:
        entries = sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError as err:
        result.skipped.append(Skipped(_display_name(folder), "unreadable",
                                      f"{type(err).__name__}: {err.strerror or err}"))
        return
    for entry in entries:
        if entry.name.startswith("."):
            result.skipped.append(Skipped(_display_name(entry), "hidden"))
        elif entry.is_dir():
            yield from _walk_folder(entry, result, seen, max_bytes)
        else:
            problem = _check_file(entry, seen, max_bytes)
            if problem is not None:
                result.skipped.append(problem)
            else:
                yield entry, _display_name(entry)


def _check_file(path: Path, seen: set[Path], max_bytes: int | None) -> Skipped | None:
    """Why the file cannot be loaded (its type, kind or size), or None; marks it seen."""
    name = _display_name(path)
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
    return None


def load_bytes(name: str, suffix: str, data: bytes, result: LoadResult) -> Skipped | None:
    """Append the documents of one file's bytes (``suffix``: ".pdf" or a text type) to ``result``; or say why not."""
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
    with _pypdf_messages() as said:  # what pypdf would print raw: said below, once, naming the file
        problem = _read_pdf_pages(name, data, result)
    if said and problem is None:  # a PDF that was refused says why in its own message
        quoted = "; ".join(f"'{m}'" for m in said[:3]) + (f" and {len(said) - 3} more" if len(said) > 3 else "")
        warnings.warn(f"{name}: the PDF looks damaged or non-standard; pypdf read what it could "
                      f"(it said: {quoted}), so its text may be incomplete", PdfWarning, stacklevel=2)
    return problem


def _read_pdf_pages(name: str, data: bytes, result: LoadResult) -> Skipped | None:
    # pypdf is imported here: only PDF users pay for it.
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, LimitReachedError, PyPdfError

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
        # Without `cryptography`, pypdf cannot even check whether an AES file
        # opens without a password: say both things the user may have to do.
        return Skipped(name, "encrypted PDF",
                       f"encrypted with AES, which pypdf reads only with the cryptography package ({err}): "
                       f"pip install cryptography; if the PDF also needs a password to open, save a decrypted copy")
    except LimitReachedError as err:
        return Skipped(name, "not a readable PDF", _too_big(err))
    except (PyPdfError, ValueError, KeyError, TypeError) as err:  # what pypdf raises on a damaged file
        return Skipped(name, "not a readable PDF", f"{type(err).__name__}: {err}")

    documents, blank_pages, unreadable = [], [], []
    for number in range(1, n_pages + 1):
        page = reader.pages[number - 1]
        try:
            text = page.extract_text()
            # pypdf gives "" for a page whose content it could not decompress:
            # a decompression bomb is not a scanned page.
            why = _no_text_reason(page) if is_blank(text) else None
        except LimitReachedError as err:
            why = _too_big(err)
        except (PyPdfError, ValueError, KeyError, TypeError) as err:
            why = f"{type(err).__name__}: {err}"
        if why is not None:
            unreadable.append(Skipped(name, "PDF page unreadable", f"page {number}: {why}"))
        elif is_blank(text):
            blank_pages.append(Skipped(name, "PDF page without text", f"page {number}"))
        else:
            documents.append(Document(text=text, source=name, page=number))
    result.skipped.extend(unreadable)
    if not documents:
        if unreadable:
            return Skipped(name, "no readable text",
                           f"{len(unreadable)} of its {n_pages} page(s) could not be read, the first: "
                           f"{unreadable[0].detail}")
        return Skipped(name, "empty", f"no text in any of its {n_pages} page(s); a scanned PDF needs OCR first")
    result.documents.extend(documents)
    result.skipped.extend(blank_pages)
    return None


def _too_big(err: Exception) -> str:
    return (f"a stream decompresses to more than pypdf's limit of {_pypdf_limit():,} bytes, so it was not read "
            f"(a decompression bomb?; pypdf: {err})")


def _pypdf_limit() -> int:
    from pypdf import filters

    return int(getattr(filters, "ZLIB_MAX_OUTPUT_LENGTH", 75_000_000))


def _no_text_reason(page) -> str | None:
    """Why a page that gave no text has none, if its content cannot be read; None for a page of images only."""
    from pypdf.errors import LimitReachedError, PyPdfError

    try:
        contents = page.get_contents()
        if contents is not None:
            contents.get_data()
    except LimitReachedError as err:
        return _too_big(err)
    except (PyPdfError, ValueError, KeyError, TypeError) as err:
        return f"{type(err).__name__}: {err}"
    return None


class _pypdf_messages:
    """Collect what pypdf logs and warns while the block runs, instead of letting it print raw."""

    def __enter__(self) -> list[str]:
        self.said: list[str] = []
        self.logger = logging.getLogger("pypdf")
        self.handler = _ListHandler(self.said)
        self.propagate = self.logger.propagate
        self.logger.addHandler(self.handler)
        self.logger.propagate = False
        self.catcher = warnings.catch_warnings(record=True)
        self.caught = self.catcher.__enter__()
        warnings.simplefilter("always")
        return self.said

    def __exit__(self, *exc_info) -> None:
        self.catcher.__exit__(*exc_info)
        self.logger.removeHandler(self.handler)
        self.logger.propagate = self.propagate
        for w in self.caught:
            if "pypdf" in (w.filename or "") or type(w.message).__module__.startswith("pypdf"):
                self.said.append(str(w.message))
            else:  # not pypdf's: as it was
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


class _ListHandler(logging.Handler):
    def __init__(self, messages: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.messages = messages

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def read_lines(path: str | os.PathLike, *, max_bytes: int | None = MAX_FILE_BYTES) -> list[str]:
    """One document per non-blank line of ``path``, stripped: any text file, or a PDF.

    Any file is read as UTF-8 text whatever its extension (``.csv``, none,
    ``/dev/stdin``), with ``load_documents``' checks: binary content or
    invalid UTF-8 is a ``DocumentError`` naming the file and the byte
    offset, a byte-order mark is dropped. A PDF (``.pdf``, or a file that
    starts like one) gives the lines of all its pages, and a ``PdfWarning``
    says which pages they come from. A folder is refused.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path, got {type(path).__name__} {path!r}")
    if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1):
        raise ValueError(f"max_bytes must be a positive integer or None, got {max_bytes!r}")
    path = Path(path)
    _check_exists(path)
    name = _display_name(path)
    if path.is_dir():
        raise DocumentError(name, "a folder", "give one text file, one document per line")
    try:
        # Read, not stat: a pipe or /dev/stdin has no size until it is read.
        with open(path, "rb") as file:
            data = file.read(-1 if max_bytes is None else max_bytes + 1)
    except OSError as err:
        raise DocumentError(name, "unreadable", f"{type(err).__name__}: {err.strerror or err}") from None
    if max_bytes is not None and len(data) > max_bytes:
        raise DocumentError(name, "too large", f"more than {max_bytes:,} bytes, the limit")
    result = LoadResult()
    is_pdf = path.suffix.lower() == ".pdf" or data.startswith(b"%PDF-")
    problem = _load_pdf(name, data, result) if is_pdf else _load_text(name, data, result)
    if problem is not None:
        raise DocumentError(problem.path, problem.reason, problem.detail)
    if is_pdf:
        _say_which_pages(name, result)
    return [line.strip() for document in result.documents for line in document.text.splitlines()
            if not is_blank(line)]


def _say_which_pages(name: str, result: LoadResult) -> None:
    def numbers(reason: str) -> list[int]:  # the details read "page 2" or "page 2: why"
        return [int(s.detail.split()[1].rstrip(":")) for s in result.skipped if s.reason == reason]

    pages, blank, unreadable = [d.page for d in result.documents], numbers("PDF page without text"), \
        numbers("PDF page unreadable")
    total = len(pages) + len(blank) + len(unreadable)
    read = f"all {total} pages" if total == len(pages) and total > 1 else f"{_pages(pages)} of {total}"
    notes = ([f"{_pages(blank)} {'has' if len(blank) == 1 else 'have'} no text"] if blank else []) + \
        ([f"{_pages(unreadable)} could not be read"] if unreadable else [])
    warnings.warn(f"{name}: read as lines from {read}" + (f" ({'; '.join(notes)})" if notes else ""),
                  PdfWarning, stacklevel=3)


def _pages(numbers: list[int]) -> str:
    """``page 1``, ``pages 1 and 3``, ``pages 1, 2 and 4``."""
    if len(numbers) == 1:
        return f"page {numbers[0]}"
    return "pages " + ", ".join(map(str, numbers[:-1])) + f" and {numbers[-1]}"
