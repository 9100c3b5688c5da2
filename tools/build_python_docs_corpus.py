"""Build the shipped Python-docs corpus and its labelled questions.

What it reads
    The reStructuredText sources of the Python 3.11 documentation that Debian's
    ``python3.11-doc`` package installs (``apt-get install -y python3.11-doc``)::

        /usr/share/doc/python3.11/html/_sources/faq/*.rst.txt
        /usr/share/doc/python3.11/html/_sources/howto/*.rst.txt
        /usr/share/doc/python3.11/html/_sources/{copyright,license}.rst.txt
        /usr/share/doc/python3.11/html/_static/documentation_options.js  (the version)

    The two ``index`` pages are left out: they hold only a table of contents.

What it writes (into ``rag_helpers/data/`` unless ``--out`` says otherwise)
    ``python_docs_corpus.json``     one document per page: ``source`` such as
                                    ``"faq/programming.rst"``, ``text``, ``sha256`` of the text.
    ``python_docs_questions.json``  every FAQ entry as a question: its heading is the
                                    query, its body the answer, a character span
                                    ``[start, end)`` in its page's ``text``; a
                                    ``"dev"``/``"test"`` split; the dropped entries and why.
    ``PYTHON_DOCS_LICENSE.txt``     the documentation's copyright and license (PSF).
    ``README.md``                   what the files hold and the counts.

    The FAQ question headings (with the ``.. _label:`` lines just above them) are
    removed from the corpus text, so a query never finds its own words there.
    A question whose text still occurs anywhere in the corpus (case and line breaks
    ignored, a final "?" or "." optional) is dropped, and so is a question asked
    twice with two different answers. The split sorts the question ids by their
    SHA-256 and gives the first half to "dev", the rest to "test": the same on
    every run, and adding a question moves no other.

    The output is deterministic: a re-run on the same sources gives identical bytes.

How to run (from the repository root)::

    apt-get install -y python3.11-doc
    python tools/build_python_docs_corpus.py            # writes rag_helpers/data/
    python tools/build_python_docs_corpus.py --out /tmp/x --sources /path/to/_sources
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

FORMAT_VERSION = 1
DEFAULT_SOURCES = Path("/usr/share/doc/python3.11/html/_sources")
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "rag_helpers" / "data"
CORPUS_FILE = "python_docs_corpus.json"
QUESTIONS_FILE = "python_docs_questions.json"
LICENSE_FILE = "PYTHON_DOCS_LICENSE.txt"
README_FILE = "README.md"
SECTIONS = ("faq", "howto")
MIN_KEPT = 150

# A section adornment: one punctuation character repeated (reST allows these).
_ADORNMENT = re.compile(r"""^([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])\1+[ \t]*$""")
_LABEL = re.compile(r"^\.\. _[^:]+:\s*$")


@dataclass(frozen=True)
class Heading:
    """A section title in a page: lines ``first..last`` (inclusive) hold its adornment and text."""

    first: int
    last: int
    text: str
    level: int


def find_headings(lines: list[str]) -> list[Heading]:
    """The section titles of a reST page, in order, with their nesting level (0 = page title).

    Levels follow reST: each new adornment style (character, with or without an
    overline) seen in the page is one level deeper than the styles before it.
    """
    styles: list[tuple[str, bool]] = []
    headings: list[Heading] = []
    i = 0
    while i < len(lines) - 1:
        line, below = lines[i], lines[i + 1]
        over = _ADORNMENT.match(line)
        if over and i + 2 < len(lines) and lines[i + 1].strip() and lines[i + 2].rstrip() == line.rstrip():
            style, first, last, text = (line[0], True), i, i + 2, lines[i + 1].strip()
        elif (line.strip() and not line[0].isspace() and not _ADORNMENT.match(line)
              and _ADORNMENT.match(below) and len(below.rstrip()) >= len(line.rstrip())):
            style, first, last, text = (below[0], False), i, i + 1, line.strip()
        else:
            i += 1
            continue
        if style not in styles:
            styles.append(style)
        headings.append(Heading(first, last, text, styles.index(style)))
        i = last + 1
    return headings


def block_start(lines: list[str], heading: Heading) -> int:
    """First line of a heading's block: the ``.. _label:`` lines just above it belong to it.

    Labels may be separated from their heading (and from each other) by blank lines.
    """
    start = heading.first
    probe = start
    while probe > 0 and (not lines[probe - 1].strip() or _LABEL.match(lines[probe - 1])):
        probe -= 1
        if _LABEL.match(lines[probe]):
            start = probe
    return start


def plain_text(rst: str) -> str:
    """A heading as a reader sees it: inline reST markup removed, whitespace collapsed."""
    text = re.sub(r":[\w:+-]+:`([^`<]*?)\s*(?:<[^`>]*>)?`", r"\1", rst)   # :func:`x`, :ref:`title <label>`
    text = re.sub(r"``(.+?)``", r"\1", text)                              # ``literal``
    text = re.sub(r"`([^`<]+?)\s*(?:<[^`>]*>)?`_{1,2}", r"\1", text)       # `link <url>`_
    text = re.sub(r"\*\*(.+?)\*\*|\*(\S(?:.*?\S)?)\*", lambda m: m.group(1) or m.group(2), text)
    return " ".join(text.split())


def slug(text: str) -> str:
    """A URL-style id of a heading, as Sphinx makes its anchors."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def squash(text: str) -> str:
    """Lower case, one space for every run of whitespace: how queries are searched for."""
    return " ".join(text.lower().split())


def split_of(ids: list[str]) -> dict[str, str]:
    """Dev/test split: ids sorted by SHA-256, the first half "dev", the rest "test"."""
    ordered = sorted(ids, key=lambda i: hashlib.sha256(i.encode("utf-8")).hexdigest())
    half = len(ordered) // 2
    return {qid: ("dev" if n < half else "test") for n, qid in enumerate(ordered)}


def read_source(path: Path) -> str:
    """A source file's text with Unix line ends; a clear error if it is not UTF-8."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SystemExit(f"{path}: not UTF-8 at byte offset {err.start}: {err.reason}") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def process_faq_page(raw: str) -> tuple[str, list[dict]]:
    """Remove the question headings of one FAQ page; return its new text and its entries.

    Every leaf section below the page title with a non-empty body is one entry
    (its heading is the question; an empty leaf is a category title). Each entry
    gets the span of its body in the new text, whitespace trimmed at both ends.
    """
    lines = raw.split("\n")
    headings = find_headings(lines)
    entries = []
    body_end = {}      # where each entry's body ends in the input: at the next heading's block
    for n, h in enumerate(headings):
        end = block_start(lines, headings[n + 1]) if n + 1 < len(headings) else len(lines)
        is_leaf = n + 1 == len(headings) or headings[n + 1].level <= h.level
        if h.level > 0 and is_leaf and any(line.strip() for line in lines[h.last + 1:end]):
            entries.append(h)
            body_end[h.first] = end

    kept: list[str] = []
    offset_of_line: dict[int, int] = {}     # input line -> offset in the new text
    offset = 0
    skip_until = -1
    starts_of_blocks = {block_start(lines, h): h for h in entries}
    for i, line in enumerate(lines):
        offset_of_line[i] = offset
        if i in starts_of_blocks:
            skip_until = starts_of_blocks[i].last
        if i <= skip_until:
            continue
        kept.append(line)
        offset += len(line) + 1
    offset_of_line[len(lines)] = offset
    text = "\n".join(kept)

    found = []
    for h in entries:
        lo, hi = offset_of_line[h.last + 1], min(offset_of_line[body_end[h.first]], len(text))
        body = text[lo:hi]
        start = lo + (len(body) - len(body.lstrip()))
        end = lo + len(body.rstrip())
        found.append({"heading": h.text, "line": h.first + 1, "start": start, "end": end,
                      "answer": " ".join(text[start:end].split())})
    return text, found


def read_version(sources: Path) -> str:
    """The documentation's release, e.g. "3.11.2", from Sphinx's documentation_options.js."""
    options = sources.parent / "_static" / "documentation_options.js"
    match = re.search(r"VERSION:\s*'([^']+)'", options.read_text(encoding="utf-8")) if options.exists() else None
    if not match:
        raise SystemExit(f"{options}: no VERSION found (is python3.11-doc installed completely?)")
    return match.group(1)


def license_text(sources: Path, release: str) -> str:
    """Copyright notice and license terms of the documentation, with our summary of changes."""
    copyright_rst = read_source(sources / "copyright.rst.txt")
    license_rst = read_source(sources / "license.rst.txt")
    # The terms that cover Python and its documentation; the list of third-party
    # software licenses that follows concerns code, not the docs we ship.
    cut = license_rst.find(".. _OtherLicenses:")
    if cut < 0:
        raise SystemExit(f"{sources / 'license.rst.txt'}: no '.. _OtherLicenses:' label; the file changed")
    terms = license_rst[:cut].rstrip().replace("|release|", release)
    header = (
        f"The files python_docs_corpus.json and python_docs_questions.json in this folder\n"
        f"are derived from the Python {release} documentation (the FAQ and HOWTO pages,\n"
        f"reStructuredText sources as shipped in Debian's python3.11-doc package).\n"
        f"\n"
        f"Summary of the changes made: the FAQ question headings and the reference\n"
        f"labels just above them were removed from the page texts, and the headings\n"
        f"were stored apart as questions with the character span of their answers;\n"
        f"the index pages were left out; line ends were normalized to LF. Nothing else\n"
        f"was changed.\n"
        f"\n"
        f"The copyright notice and license of the Python documentation follow,\n"
        f"verbatim from copyright.rst and license.rst of that documentation (up to its\n"
        f"list of licenses of software incorporated into Python).\n"
        f"\n" + "=" * 78 + "\n\n"
    )
    return header + copyright_rst.strip() + "\n\n" + "=" * 78 + "\n\n" + terms + "\n"


def build(sources: Path) -> dict[str, str]:
    """Everything this script writes: file name -> text."""
    for section in SECTIONS:
        if not (sources / section).is_dir():
            raise SystemExit(f"{sources / section}: not found. Install the docs first: "
                             f"apt-get install -y python3.11-doc (or pass --sources)")
    release = read_version(sources)

    documents: list[dict] = []
    entries: list[dict] = []
    for section in SECTIONS:
        for path in sorted((sources / section).iterdir()):
            name = path.name.removesuffix(".txt")
            if not name.endswith(".rst") or name == "index.rst":
                continue
            source = f"{section}/{name}"
            raw = read_source(path)
            if section == "faq":
                text, found = process_faq_page(raw)
                entries.extend(dict(e, source=source) for e in found)
            else:
                text = raw
            documents.append({"source": source, "text": text,
                              "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()})

    # Which entries become questions, and why the others do not.
    haystack = "\n".join(squash(d["text"]) for d in documents)
    by_question: dict[str, list[dict]] = {}
    for e in entries:
        e["question"] = plain_text(e["heading"])
        by_question.setdefault(e["question"].lower(), []).append(e)
    kept, dropped = [], []
    for e in sorted(entries, key=lambda e: (e["source"], e["start"])):
        where = f"{e['source']}:{e['line']}"
        twins = by_question[e["question"].lower()]
        bare = squash(e["question"]).rstrip("?.")
        if len(twins) > 1:
            others = ", ".join(f"{t['source']}:{t['line']}" for t in twins if t is not e)
            reason = f"asked twice with different answers (also {others})"
        elif len(e["answer"]) < 120 and e["answer"].startswith("See "):
            reason = f"the answer only refers elsewhere ({e['answer']!r})"
        elif bare in haystack:
            reason = "the question's words still occur verbatim in the corpus"
        else:
            kept.append(e)
            continue
        dropped.append({"question": e["question"], "where": where, "reason": reason})

    ids: dict[str, int] = {}
    questions = []
    for e in kept:
        qid = f"{e['source'].removesuffix('.rst')}#{slug(e['question'])}"
        ids[qid] = ids.get(qid, 0) + 1
        if ids[qid] > 1:
            qid = f"{qid}-{ids[qid]}"
        questions.append({"id": qid, "question": e["question"], "source": e["source"],
                          "start": e["start"], "end": e["end"]})
    splits = split_of([q["id"] for q in questions])
    for q in questions:
        q["split"] = splits[q["id"]]

    n_dev = sum(q["split"] == "dev" for q in questions)
    corpus = {
        "format_version": FORMAT_VERSION,
        "description": f"Python {release} documentation, FAQ and HOWTO pages (reStructuredText), "
                       "FAQ question headings removed. Built by tools/build_python_docs_corpus.py.",
        "python_docs_version": release,
        "license": "PSF License Agreement; see PYTHON_DOCS_LICENSE.txt",
        "documents": documents,
    }
    labelled = {
        "format_version": FORMAT_VERSION,
        "description": "Each FAQ entry as a question; the answer is text[start:end] of the document "
                       "named by source in python_docs_corpus.json. Built by tools/build_python_docs_corpus.py.",
        "corpus_sha256": corpus_digest(documents),
        "faq_entries": len(entries),
        "kept": len(questions),
        "dropped_count": len(dropped),
        "split_rule": "ids sorted by sha256(id); first half dev, the rest test",
        "dev": n_dev,
        "test": len(questions) - n_dev,
        "questions": questions,
        "dropped": dropped,
    }
    stats = {"release": release, "documents": len(documents),
             "characters": sum(len(d["text"]) for d in documents),
             "entries": len(entries), "kept": len(questions), "dropped": dropped,
             "dev": n_dev, "test": len(questions) - n_dev}
    return {
        CORPUS_FILE: dumps(corpus),
        QUESTIONS_FILE: dumps(labelled),
        LICENSE_FILE: license_text(sources, release),
        README_FILE: readme(stats),
        "__stats__": json.dumps(stats),
    }


def corpus_digest(documents: list[dict]) -> str:
    """SHA-256 over every (source, text) pair: ties the questions to the corpus they index."""
    h = hashlib.sha256()
    for d in documents:
        h.update(d["source"].encode("utf-8") + b"\0" + d["text"].encode("utf-8") + b"\0")
    return h.hexdigest()


def dumps(obj: dict) -> str:
    """Deterministic JSON: UTF-8 text, fixed key order, one item per line."""
    return json.dumps(obj, ensure_ascii=False, indent=1) + "\n"


def readme(stats: dict) -> str:
    dropped = "\n".join(f"- {d['where']}: \"{d['question']}\": {d['reason']}" for d in stats["dropped"])
    return f"""# Data shipped with rag_helpers

Built by `tools/build_python_docs_corpus.py` (do not edit by hand; re-run it) from the
Python {stats['release']} documentation, except `unanswerable_questions.json`, written by hand.
Read them with `rag_helpers.engine.corpus`.

| file | what it holds |
|---|---|
| `python_docs_corpus.json` | {stats['documents']} pages (FAQ and HOWTO), {stats['characters']:,} characters of reStructuredText, FAQ question headings removed |
| `python_docs_questions.json` | {stats['kept']} labelled questions: the FAQ headings, each with its answer's character span; dev {stats['dev']}, test {stats['test']} |
| `unanswerable_questions.json` | questions the corpus cannot answer: about Python but not covered, or off-topic; dev/test split |
| `PYTHON_DOCS_LICENSE.txt` | the documentation's copyright notice and license (PSF) |

Of {stats['entries']} FAQ entries, {stats['kept']} were kept and {len(stats['dropped'])} dropped:

{dropped or "(none)"}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=Path, default=DEFAULT_SOURCES,
                        help=f"the docs' _sources folder (default {DEFAULT_SOURCES})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)

    files = build(args.sources)
    stats = json.loads(files.pop("__stats__"))
    if stats["kept"] < MIN_KEPT:
        raise SystemExit(f"only {stats['kept']} questions kept (< {MIN_KEPT}); the sources changed?")
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (args.out / name).write_bytes(text.encode("utf-8"))
    print(f"Python {stats['release']} docs: {stats['documents']} documents, {stats['characters']:,} characters")
    print(f"FAQ entries: {stats['entries']}; kept {stats['kept']} (dev {stats['dev']}, test {stats['test']}); "
          f"dropped {len(stats['dropped'])}:")
    for d in stats["dropped"]:
        print(f"  {d['where']}: {d['question']!r}: {d['reason']}")
    print(f"wrote {', '.join(files)} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
