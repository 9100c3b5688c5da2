"""Loading files and folders: what is read, in what order, and what is refused or skipped (and said)."""
from __future__ import annotations

import io
import os
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pypdf import PdfReader, PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

from rag_helpers.engine.documents import (
    Document,
    DocumentError,
    LoadResult,
    Skipped,
    is_blank,
    load_documents,
)


def make_pdf(pages: list[str], password: str | None = None) -> bytes:
    """A real PDF, one page per string (Helvetica, one text line per line); '' makes a page without text."""
    writer = PdfWriter()
    for text in pages:
        page = writer.add_blank_page(612, 792)
        font = DictionaryObject({NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
                                 NameObject("/BaseFont"): NameObject("/Helvetica")})
        fonts = DictionaryObject({NameObject("/F1"): font})
        page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): fonts})
        operators = ["BT /F1 12 Tf 72 720 Td 14 TL"]
        for line in text.split("\n") if text else []:
            escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            operators.append(f"({escaped}) Tj T*")
        operators.append("ET")
        stream = DecodedStreamObject()
        stream.set_data("\n".join(operators).encode("latin-1"))
        page.replace_contents(stream)
    if password is not None:
        # RC4 needs no extra package (AES would need `cryptography`).
        writer.encrypt(user_password=password, algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def test_make_pdf_makes_what_pypdf_reads():
    reader = PdfReader(io.BytesIO(make_pdf(["Hello (one).", ""])))
    assert [page.extract_text().strip() for page in reader.pages] == ["Hello (one).", ""]


@pytest.fixture()
def folder(tmp_path):
    """A folder with good files, bad files and hidden ones, in an order that sorting must fix."""
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / ".git" / "config.txt").write_text("never read")
    (root / ".notes.md").write_text("hidden, never read")
    (root / "b_guide.md").write_text("# Guide\n\nMarkdown text.\n")
    (root / "a_intro.txt").write_bytes(b"\xef\xbb\xbfPlain text with a BOM.\r\nSecond line.\r\n")
    (root / "c_ref.rst").write_text("Reference\n=========\n\nreST text.\n")
    (root / "d_paper.pdf").write_bytes(make_pdf(["Page one text.", "", "Page three text."]))
    (root / "sub" / "nested.TXT").write_text("Nested file, upper-case suffix.")
    (root / "z_binary.txt").write_bytes(b"abc\x00def")
    (root / "z_empty.txt").write_bytes(b"")
    (root / "z_invisible.md").write_text("\u200b \u200b\n\ufeff\u00ad\t\n")
    (root / "z_latin1.txt").write_bytes("line one\ncaf\u00e9\n".encode("latin-1"))
    (root / "z_word.docx").write_bytes(b"PK\x03\x04")
    (root / "z_locked.pdf").write_bytes(make_pdf(["secret"], password="pw"))
    return root


def test_folder_loads_supported_files_recursively_in_sorted_order(folder):
    result = load_documents(folder)
    assert [(d.source, d.page) for d in result.documents] == [
        (str(folder / "a_intro.txt"), None),
        (str(folder / "b_guide.md"), None),
        (str(folder / "c_ref.rst"), None),
        (str(folder / "d_paper.pdf"), 1),
        (str(folder / "d_paper.pdf"), 3),
        (str(folder / "sub" / "nested.TXT"), None),
    ]
    texts = [d.text for d in result.documents]
    assert texts[0] == "Plain text with a BOM.\r\nSecond line.\r\n"  # BOM gone, the rest as in the file
    assert texts[1] == "# Guide\n\nMarkdown text.\n"
    assert texts[2] == "Reference\n=========\n\nreST text.\n"
    assert texts[3].strip() == "Page one text." and texts[4].strip() == "Page three text."
    assert load_documents(folder) == result  # deterministic


def test_folder_reports_every_skip_with_its_reason(folder):
    result = load_documents(folder)
    reasons = {os.path.relpath(s.path, folder): s.reason for s in result.skipped}
    assert reasons == {
        ".git": "hidden",
        ".notes.md": "hidden",
        "d_paper.pdf": "PDF page without text",
        "z_binary.txt": "binary",
        "z_empty.txt": "empty",
        "z_invisible.md": "empty",
        "z_latin1.txt": "invalid UTF-8",
        "z_word.docx": "unsupported extension",
        "z_locked.pdf": "encrypted PDF",
    }
    details = {os.path.relpath(s.path, folder): s.detail for s in result.skipped}
    assert details["z_binary.txt"] == "NUL byte at offset 3"
    assert "0xe9 at offset 12" in details["z_latin1.txt"] and "line 2" in details["z_latin1.txt"]
    assert details["d_paper.pdf"] == "page 2"

    report = result.report()
    lines = report.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("skipped 6 files: 1 binary (")
    assert "2 empty (" in lines[0] and "z_empty.txt" in lines[0] and "z_invisible.md" in lines[0]
    assert "1 unsupported extension (" in lines[0] and "1 invalid UTF-8 (" in lines[0]
    assert "1 encrypted PDF (" in lines[0]
    assert lines[1].startswith("skipped 1 PDF page(s) without text") and "d_paper.pdf (1)" in lines[1]
    assert lines[2].startswith("ignored 2 hidden entries (") and ".git" in lines[2]


def test_report_is_empty_when_nothing_was_skipped_and_shortens_long_lists():
    assert LoadResult([Document("x", "x.txt")], []).report() == ""
    many = LoadResult([], [Skipped(f"f{i}.bin", "unsupported extension") for i in range(5)])
    assert many.report() == "skipped 5 files: 5 unsupported extension (f0.bin, f1.bin, f2.bin and 2 more)"


@pytest.mark.parametrize(("name", "content", "reason", "detail"), [
    ("bin.txt", b"\x89PNG\r\n\x1a\n\x00\x00", "binary", "NUL byte at offset 8"),
    ("utf16.txt", "hi".encode("utf-16"), "binary", "UTF-16"),
    ("empty.md", b"", "empty", "no bytes"),
    ("blank.rst", b"  \n\t\r\n", "empty", "only whitespace or invisible characters"),
    ("zwsp.txt", "\u200b\u200c\u200d\u2060".encode(), "empty", "invisible"),
    ("bad.txt", b"good line\nbad \xff here", "invalid UTF-8", "byte 0xff at offset 14, line 2"),
    ("cut.txt", "ok caf\u00e9".encode()[:-1], "invalid UTF-8", "offset 6"),
    ("doc.docx", b"PK\x03\x04", "unsupported extension", ".docx"),
    ("README", b"text", "unsupported extension", "no extension"),
    ("scan.pdf", make_pdf(["", ""]), "empty", "no text in any of its 2 page(s)"),
    ("broken.pdf", b"%PDF-1.4\nnot really a pdf", "not a readable PDF", ""),
    ("zero.pdf", b"", "empty", "no bytes"),
    ("locked.pdf", make_pdf(["secret"], password="pw"), "encrypted PDF", "password"),
])
def test_a_named_file_that_cannot_be_loaded_is_an_error_naming_it(tmp_path, name, content, reason, detail):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DocumentError) as info:
        load_documents(path)
    assert info.value.path == str(path) and info.value.reason == reason
    assert detail in info.value.detail
    assert str(path) in str(info.value) and reason in str(info.value)


def test_a_pdf_encrypted_without_a_user_password_opens(tmp_path):
    path = tmp_path / "restricted.pdf"
    path.write_bytes(make_pdf(["Readable by all.", "Page two."], password=""))
    documents = load_documents(path).documents
    assert [(d.text.strip(), d.page) for d in documents] == [("Readable by all.", 1), ("Page two.", 2)]


def test_a_named_pdf_reports_its_blank_pages_but_loads(tmp_path):
    path = tmp_path / "p.pdf"
    path.write_bytes(make_pdf(["", "Only page two has text."]))
    result = load_documents([str(path)])
    assert [(d.page, d.source) for d in result.documents] == [(2, str(path))]
    assert result.skipped == [Skipped(str(path), "PDF page without text", "page 1")]


def test_missing_path_is_an_error_naming_it(tmp_path):
    missing = tmp_path / "no_such_folder" / "notes.txt"
    with pytest.raises(FileNotFoundError, match="no_such_folder"):
        load_documents([missing])
    (tmp_path / "a.txt").write_text("alpha")
    with pytest.raises(FileNotFoundError, match="no_such_folder"):  # before reading anything
        load_documents([tmp_path / "a.txt", missing])


def test_a_folder_with_nothing_loadable_is_an_error_that_lists_the_skips(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"\x00")
    (tmp_path / "e.txt").write_text("")
    with pytest.raises(DocumentError, match=r"no documents could be loaded.*1 unsupported extension \(.*a\.bin\)"):
        load_documents(tmp_path)
    empty_folder = tmp_path / "empty_folder"
    empty_folder.mkdir()
    with pytest.raises(DocumentError, match="nothing in it"):
        load_documents(empty_folder)


def test_a_file_reached_twice_is_loaded_once_and_that_is_said(tmp_path):
    (tmp_path / "a.txt").write_text("alpha")
    result = load_documents([tmp_path / "a.txt", tmp_path, tmp_path / "a.txt"])
    assert [d.text for d in result.documents] == ["alpha"]
    assert [s.reason for s in result.skipped] == ["already loaded", "already loaded"]


@pytest.mark.skipif(not hasattr(os, "symlink") or sys.platform == "win32", reason="needs symbolic links")
def test_a_symlink_loop_ends(tmp_path):
    (tmp_path / "a.txt").write_text("alpha")
    os.symlink(tmp_path, tmp_path / "loop")
    result = load_documents(tmp_path)
    assert [d.text for d in result.documents] == ["alpha"]
    assert [(os.path.basename(s.path), s.reason) for s in result.skipped] == [("loop", "already loaded")]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_named_pipe_is_skipped_not_read(tmp_path):
    (tmp_path / "a.txt").write_text("alpha")
    os.mkfifo(tmp_path / "pipe.txt")  # reading it would block for ever
    result = load_documents(tmp_path)
    assert [d.text for d in result.documents] == ["alpha"]
    assert [s.reason for s in result.skipped] == ["not a regular file"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_skipped_in_a_folder(tmp_path):
    (tmp_path / "a.txt").write_text("alpha")
    locked = tmp_path / "locked.txt"
    locked.write_text("secret")
    locked.chmod(0)
    result = load_documents(tmp_path)
    assert [s.reason for s in result.skipped] == ["unreadable"]
    with pytest.raises(DocumentError, match="unreadable"):
        load_documents(locked)


def test_size_limit(tmp_path):
    path = tmp_path / "big.txt"
    path.write_text("x" * 100)
    with pytest.raises(DocumentError, match="too large.*100 bytes, the limit is 99"):
        load_documents(path, max_bytes=99)
    assert load_documents(path, max_bytes=100).documents[0].text == "x" * 100
    assert load_documents(path, max_bytes=None).documents[0].text == "x" * 100


def test_a_hidden_file_named_explicitly_is_loaded(tmp_path):
    path = tmp_path / ".notes.md"
    path.write_text("my notes")
    assert load_documents(path).documents == [Document("my notes", str(path))]


@pytest.mark.parametrize(("paths", "error"), [([], ValueError), ([42], TypeError), (None, TypeError)])
def test_bad_paths_argument(paths, error):
    with pytest.raises(error):
        load_documents(paths)


@pytest.mark.parametrize("max_bytes", [0, -1, 1.5, True])
def test_bad_max_bytes(tmp_path, max_bytes):
    (tmp_path / "a.txt").write_text("alpha")
    with pytest.raises(ValueError, match="max_bytes"):
        load_documents(tmp_path, max_bytes=max_bytes)


INVISIBLE = st.sampled_from(" \t\n\r\x0b\x0c\u00a0\u1680\u2000\u2009\u200a\u200b\u200c\u200d\u2028\u2029"
                            "\u202f\u205f\u2060\u3000\ufeff\u00ad\x00\x1b\u3164\u2800")


@given(st.text(INVISIBLE))
def test_only_invisible_characters_is_blank(text):
    assert is_blank(text)


@given(st.text(INVISIBLE), st.characters(categories=["L", "N", "P", "S"]), st.text(INVISIBLE))
def test_one_visible_character_is_not_blank(before, visible, after):
    if visible in "\u115f\u1160\u2800\u3164\uffa0":  # letters that render as blanks
        return
    assert not is_blank(before + visible + after)


# ---------------------------------------------------------------- notebook 08's loader
# rag_helpers/documents.py (notebook 08) reads a folder in a few lines: .txt .md .rst, sorted by
# name folder by folder, hidden entries and empty files left out, bytes decoded as they are. On a
# folder of valid text files the checked loader must return exactly those Documents.

import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

from rag_helpers import documents as taught  # noqa: E402

FILE_NAMES = st.sampled_from(["a.txt", "B.md", "notes.rst", "z.TXT", "Read Me.md", "é.txt", "10.txt", "9.rst",
                              ".hidden.txt", "slides.pptx", "data.json"])
DIR_NAMES = st.sampled_from(["docs", "Docs", "sub", ".git", "2024", "notes.d"])
VISIBLE_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=60) \
    .filter(lambda t: any(ch.isascii() and ch.isalnum() for ch in t))   # not blank by either rule
FILES = st.lists(st.tuples(st.lists(DIR_NAMES, max_size=2), FILE_NAMES, st.booleans(),
                           st.one_of(VISIBLE_TEXT, st.sampled_from(["", "  \n", "a\r\nb\r\n", "\ufeffBOM first"]))),
                 min_size=1, max_size=12)


@given(FILES)
def test_load_documents_gives_the_notebook_s_documents_on_valid_text_files(files):
    with tempfile.TemporaryDirectory() as root:
        folder = Path(root) / "kb"
        folder.mkdir()
        (folder / "always.txt").write_text("Jupiter is the largest planet.\n", encoding="utf-8")
        for dirs, name, bom, text in files:
            where = folder.joinpath(*dirs)
            where.mkdir(parents=True, exist_ok=True)
            (where / name).write_bytes(("\ufeff" if bom else "").encode() + text.encode("utf-8"))
        expected = taught.read_text_files(folder)
        assert load_documents(folder).documents == expected
        assert all(isinstance(d, taught.Document) and d.page is None for d in expected)
