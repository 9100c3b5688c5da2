"""Input checks shared by the whole package.

Every public function validates its arguments *before* doing any work, so a
mistake surfaces as a short ``TypeError``/``ValueError`` that names the
argument, instead of a NaN score or an ``IndexError`` from deep inside NumPy.
"""
from __future__ import annotations

import numbers
import unicodedata
from collections.abc import Sequence

import numpy as np

__all__ = [
    "check_positive_int",
    "check_k",
    "check_text",
    "check_query_text",
    "check_texts",
    "is_invisible",
    "has_text",
    "remove_invisible",
    "INVISIBLE_EXTRA",
    "as_float_array",
    "describe_rows",
]


def check_positive_int(value: object, name: str) -> int:
    """Return ``value`` as an ``int`` if it is an integer >= 1 (NumPy integers included); raise otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {type(value).__name__} {value!r}")
    return int(value)


def check_k(k: object, n: int, *, name: str = "k", what: str = "documents") -> int:
    """Return ``k`` as an ``int`` if ``1 <= k <= n``; raise otherwise."""
    # bool is an Integral in Python, but k=True is always a mistake.
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(k).__name__} {k!r}")
    k = int(k)
    if k < 1:
        raise ValueError(f"{name} must be at least 1, got {k}")
    if k > n:
        raise ValueError(f"{name}={k} is larger than the number of {what} ({n})")
    return k


# Invisible characters that are not in category Cf: Hangul fillers, the
# braille blank, the combining grapheme joiner and the variation selectors.
INVISIBLE_EXTRA = frozenset(
    "\u115f\u1160\u3164\uffa0\u2800\u034f"
    + "".join(map(chr, range(0xFE00, 0xFE10)))
    + "".join(map(chr, range(0xE0100, 0xE01F0)))
)


def is_invisible(char: str) -> bool:
    """True for a character that prints as nothing: Unicode category Cf (format) and a few others."""
    return unicodedata.category(char) == "Cf" or char in INVISIBLE_EXTRA


# What is not text on its own: control characters (Cc: BEL, ESC, NUL, DEL),
# format characters (Cf) and combining marks (Mn, Mc, Me: an accent, a vowel
# sign) with no character to sit on. all-MiniLM-L6-v2's tokenizer drops the
# controls and the Mn marks, so such a text embeds as the empty text, and that
# vector outranks real documents for off-topic questions; the other marks
# become [UNK] or a lone vowel sign, no better.
_NOT_TEXT_ALONE = frozenset({"Cc", "Cf", "Mn", "Mc", "Me"})


def has_text(text: str) -> bool:
    """True if ``text`` holds at least one character that is text on its own.

    Not text on its own: whitespace, invisible characters (``is_invisible``),
    control characters and combining marks. So ``"\\x07\\x1b"``, ``"\\u0301"`` and
    ``"\\x00"`` have no text, ``"e\\u0301"`` (é written with a combining accent) has.
    """
    # any() stops at the first such character: usually the first one.
    return any(
        not char.isspace() and char not in INVISIBLE_EXTRA and unicodedata.category(char) not in _NOT_TEXT_ALONE
        for char in text
    )


def remove_invisible(text: str) -> str:
    """``text`` without its invisible characters (see ``is_invisible``)."""
    if text.isascii():  # the usual case, and ASCII has none
        return text
    return "".join(char for char in text if not is_invisible(char))


def _refuse_lone_surrogate(text: str, name: str) -> None:
    # A lone surrogate ('\ud800', left by decoding bytes with
    # errors="surrogateescape") is not valid Unicode: no tokenizer can encode it.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"{name} contains a lone surrogate (U+{ord(text[exc.start]):04X}) at character {exc.start}: "
            "not valid Unicode text (was it decoded with errors='surrogateescape'?)"
        ) from None


def check_text(text: object, *, name: str = "text") -> str:
    """Return ``text`` if it is a string that can go into a prompt; raise a clear error otherwise.

    Refused: a non-string (``TypeError``); a text that is empty, only
    whitespace, or only invisible characters, control characters and
    combining marks (see ``has_text``); a lone surrogate such as
    ``'\\ud800'`` (``ValueError``, naming ``name`` and the character's position).
    """
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a string, got {type(text).__name__}")
    if not text.isascii():
        _refuse_lone_surrogate(text, name)
    if not has_text(text):
        raise ValueError(f"{name} is empty (or only whitespace, invisible or control characters and combining marks)")
    return text


def check_query_text(query: object, *, name: str = "query") -> str:
    """Return ``query`` if it is a non-blank string; raise otherwise.

    Refused like documents are: only whitespace, invisible or control
    characters and combining marks, or a lone surrogate (``'\\ud800'``), with its position.
    """
    if not isinstance(query, str):
        raise TypeError(f"{name} must be a string, got {type(query).__name__}")
    if not query.strip():
        raise ValueError(f"{name} is empty (or only whitespace)")
    return check_text(query, name=name)


def check_texts(texts: object, *, name: str = "documents") -> list[str]:
    """Return ``texts`` as a list of non-blank strings; raise otherwise.

    A bare string is refused: iterating over it would embed single characters.
    A text that is only invisible characters (a zero-width space, U+200B),
    control characters (``"\\x07\\x1b"``) or combining marks with nothing to sit
    on (``"\\u0301"``) is refused like an empty one (see ``has_text``), and a lone surrogate (``'\\ud800'``, which no
    tokenizer can encode) is refused with its position.
    """
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"{name} must be a list of strings, not a single {type(texts).__name__}")
    if isinstance(texts, np.ndarray):
        texts = texts.tolist()
    if not isinstance(texts, Sequence):
        raise TypeError(f"{name} must be a list of strings, got {type(texts).__name__}")
    if len(texts) == 0:
        raise ValueError(f"{name} is empty: give at least one document")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"{name}[{i}] is a {type(text).__name__}, not a string: {text!r:.60}")
        if not text.strip():
            raise ValueError(f"{name}[{i}] is empty (or only whitespace)")
        if not text.isascii():
            _refuse_lone_surrogate(text, f"{name}[{i}]")
        if not has_text(text):  # stops at the first character of text: usually the first one
            raise ValueError(f"{name}[{i}] is empty (or only whitespace, invisible or control characters such "
                             f"as U+200B or BEL, and combining marks)")
    return list(texts)


def as_float_array(x: object, *, name: str, ndims: tuple[int, ...] = (1, 2)) -> np.ndarray:
    """``np.asarray(x)`` for real-valued numeric input with an allowed number of dimensions.

    Floating arrays keep their dtype (no copy); integer and bool arrays become
    float64. Complex, object and string arrays are refused.
    """
    if isinstance(x, np.ma.MaskedArray):
        # A mask would be silently ignored by every matrix product.
        raise TypeError(f"{name} is a masked array: fill or drop the masked values first (x.filled(...))")
    try:
        arr = np.asarray(x)
    except ValueError as exc:  # e.g. rows of different lengths
        raise ValueError(f"{name} is not a rectangular array of numbers ({exc})") from None
    if arr.dtype.kind in "biu":
        arr = arr.astype(np.float64)
    elif arr.dtype.kind != "f":
        raise TypeError(f"{name} must be a real-valued numeric array, got dtype {arr.dtype}")
    elif arr.dtype.itemsize > 8:
        raise TypeError(f"{name} has dtype {arr.dtype}: use float32 or float64 (BLAS has no {arr.dtype})")
    if arr.ndim not in ndims:
        allowed = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"{name} must be {allowed}, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    return arr


def describe_rows(rows: np.ndarray, limit: int = 5) -> str:
    """ "3, 7, 9" for error messages; long lists end with "and N more"."""
    shown = ", ".join(str(int(r)) for r in rows[:limit])
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return f"{shown}{more}"
