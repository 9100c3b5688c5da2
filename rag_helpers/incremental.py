# Generated from notebooks/12_changing_documents.ipynb by tools/nbexport.py: edit the notebook, not this file.
# Each block below is one `#| export` cell of the notebook, verbatim, in order.

"""Indexes that keep up with changing files, and searches restricted by metadata (notebook 12).

Embedding is the slow step of building an index, so an index of files that change every day
must not embed everything again when one line of one file changes. Key each chunk's vector by
what it was made from, the model and the chunk's text: an unchanged chunk then keeps its key, in
whatever file and at whatever position it ends up, and only chunks with new keys are embedded.
A digest of each file's bytes says which files changed at all, so unchanged files are not even
chunked again.

A filter (only Markdown files, only pages 3 to 5, only the "Installing" section) is applied
*before* the top-k: search the rows that match, and map the hits back to their row numbers.
Filtering the top-k afterwards would return fewer than k hits, or none.
"""
import bisect
import fnmatch
import hashlib
import re
from pathlib import PurePosixPath

import numpy as np

from rag_helpers.topk import search


def content_key(text: str, model: str) -> str:
    """The key of a chunk's vector: SHA-256 of the model's name and the chunk's text, 64 hex digits.

    The same text embedded by the same model gives the same vector, so it gets the same key,
    whichever file it is in; another model gives another key.
    """
    return hashlib.sha256(model.encode() + b"\0" + text.encode("utf-8", "surrogatepass")).hexdigest()


def file_digest(data: bytes) -> str:
    """SHA-256 of a file's bytes: equal digests, unchanged file (with overwhelming probability)."""
    return hashlib.sha256(data).hexdigest()


def diff_files(old: dict[str, str], new: dict[str, str]) -> dict[str, list[str]]:
    """Compare two ``{source: file digest}`` maps, the last index's and today's.

    Returns the sources ``"added"``, ``"changed"``, ``"deleted"`` and ``"unchanged"``, each sorted.
    """
    both = old.keys() & new.keys()
    return {
        "added": sorted(new.keys() - old.keys()),
        "changed": sorted(s for s in both if old[s] != new[s]),
        "deleted": sorted(old.keys() - new.keys()),
        "unchanged": sorted(s for s in both if old[s] == new[s]),
    }


def update_vectors(old_keys: list[str], old_vectors: np.ndarray, new_keys: list[str],
                   new_texts: list[str], embed_texts) -> tuple[np.ndarray, int]:
    """The vectors of the new chunks: copied from the old index where the key is there, else embedded.

    old_keys, old_vectors: the last index, (n_old, dim) float32; new_keys, new_texts: today's
    chunks; embed_texts(list of str) -> (m, dim) float32 unit rows. Each new key is embedded
    once, however many chunks share it. Returns ((n_new, dim) float32, how many texts were embedded).
    """
    old_row = {key: row for row, key in enumerate(old_keys)}
    text_of = dict(zip(new_keys, new_texts))
    todo = [key for key in dict.fromkeys(new_keys) if key not in old_row]  # new keys, each once
    fresh = embed_texts([text_of[key] for key in todo]) if todo else None
    fresh_row = {key: row for row, key in enumerate(todo)}

    vectors = np.empty((len(new_keys), old_vectors.shape[1] if fresh is None else fresh.shape[1]), np.float32)
    rows = np.array([old_row.get(key, -1) for key in new_keys], dtype=np.int64)
    kept = rows >= 0
    vectors[kept] = old_vectors[rows[kept]]
    if todo:
        vectors[~kept] = fresh[[fresh_row[key] for key, k in zip(new_keys, kept) if not k]]
    return vectors, len(todo)


_UNDERLINE = re.compile(r"([=\-~^\"'`#*+:.])\1{2,}[ \t]*")   # reStructuredText: a run of one punctuation mark
_MARKDOWN = re.compile(r"#{1,6}[ \t]+(.+?)[ \t#]*")            # Markdown: # Title, ## Title, ...


def headings(text: str) -> list[tuple[int, str]]:
    """``(offset, title)`` of each heading: Markdown ``# Title`` lines outside ``` fences, and
    reStructuredText titles (a line underlined with ``===``, ``---``, ``~~~``, ...)."""
    found, offset, fenced = [], 0, False
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        bare = line.strip()
        if bare.startswith("```"):
            fenced = not fenced
        elif not fenced and (m := _MARKDOWN.fullmatch(bare)):
            found.append((offset, m.group(1)))
        elif (bare and i + 1 < len(lines) and not _UNDERLINE.fullmatch(bare)
              and _UNDERLINE.fullmatch(lines[i + 1].strip()) and len(lines[i + 1].strip()) >= len(bare)):
            found.append((offset, bare))
        offset += len(line)
    return found


def section_at(heads: list[tuple[int, str]], offset: int) -> str | None:
    """The title of the last heading at or before ``offset`` (None before the first one)."""
    i = bisect.bisect_right([start for start, _ in heads], offset) - 1
    return heads[i][1] if i >= 0 else None


def where_rows(metadata: list[dict], *, source: str | None = None, suffix: str | None = None,
               pages: tuple[int, int] | None = None, section: str | None = None) -> np.ndarray:
    """The row numbers whose metadata match every condition given (None: no condition), (m,) int64.

    metadata[i]: chunk i's ``{"source", "page", "section"}``. ``source``: a glob on the file's
    name (``fnmatch``: ``*`` matches any characters, "/" too: ``"docs/v3/*"``, ``"*.md"``);
    ``suffix``: the file type, ``".pdf"``; ``pages``: ``(first, last)``, inclusive (a chunk
    without a page never matches); ``section``: a glob on the heading the chunk is under.
    """
    keep = []
    for row, meta in enumerate(metadata):
        if source is not None and not fnmatch.fnmatchcase(meta["source"], source):
            continue
        if suffix is not None and PurePosixPath(meta["source"]).suffix.lower() != suffix.lower():
            continue
        if pages is not None and (meta["page"] is None or not pages[0] <= meta["page"] <= pages[1]):
            continue
        if section is not None and (meta["section"] is None or not fnmatch.fnmatchcase(meta["section"], section)):
            continue
        keep.append(row)
    return np.array(keep, dtype=np.int64)


def filtered_search(query: np.ndarray, docs: np.ndarray, k: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``search`` among ``docs[rows]`` only: the k best of the rows that match, as row numbers of ``docs``.

    query (dim,) and docs (n, dim) unit rows; rows (m,) int64, increasing. Returns (indices, scores),
    min(k, m) of each, best first: k hits whenever k rows match, which filtering after the top-k can't promise.
    """
    if len(rows) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    indices, scores = search(query, docs[rows], min(k, len(rows)))
    return rows[indices], scores
