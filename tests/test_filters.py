"""Filters by where a chunk came from (issue 18): applied before the top-k, equal to brute force on the subset."""
from __future__ import annotations

import fnmatch

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rag_helpers as rh
from rag_helpers.engine.filters import NoMatchError, Where, filtered_search
from rag_helpers.incremental import filtered_search as taught_filtered_search
from rag_helpers.incremental import headings, section_at, where_rows

SOURCES = ["docs/v2/install.md", "docs/v3/install.md", "docs/v3/api.rst", "paper.pdf", "notes/todo.txt"]
SECTIONS = [None, "Install", "Installing on Windows", "API", "Usage"]


def metadata_strategy(n):
    return st.lists(st.tuples(st.sampled_from(SOURCES), st.one_of(st.none(), st.integers(1, 9)),
                              st.sampled_from(SECTIONS)), min_size=n, max_size=n)


def brute_force(query, docs, k, keep):
    """Score every row, drop the ones that do not match, sort (stable), keep k: the definition."""
    rows = np.flatnonzero(keep)
    scores = docs[rows] @ query
    order = np.argsort(-scores, kind="stable")[:k]
    return rows[order], scores[order]


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 300), k=st.integers(1, 20), seed=st.integers(0, 2**31), data=st.data())
def test_filtered_search_is_brute_force_on_the_subset(n, k, seed, data):
    rng = np.random.default_rng(seed)
    docs = rh.l2_normalize(rng.standard_normal((n, 16)).astype(np.float32))
    query = rh.l2_normalize(rng.standard_normal(16).astype(np.float32))
    meta = [{"source": s, "page": p, "section": t} for s, p, t in data.draw(metadata_strategy(n))]
    where = data.draw(st.sampled_from([Where(source="docs/v3/*"), Where(suffix="md"), Where(pages=(2, 5)),
                                       Where(section="Install*"), Where(source="*install*", section="Install"),
                                       Where(pages=3)]))
    keep = np.array([(where.source is None or fnmatch.fnmatchcase(m["source"], where.source))
                     and (where.suffix is None or m["source"].endswith(where.suffix))
                     and (where.pages is None or (m["page"] is not None and where.pages[0] <= m["page"] <= where.pages[1]))
                     and (where.section is None or (m["section"] is not None and fnmatch.fnmatchcase(m["section"], where.section)))
                     for m in meta])
    rows = where.rows(meta)
    assert np.array_equal(rows, np.flatnonzero(keep))
    if not keep.any():
        with pytest.raises(NoMatchError):
            filtered_search(query, docs, k, rows)
        return
    indices, scores = filtered_search(query, docs, k, rows)
    expected_indices, expected_scores = brute_force(query, docs, k, keep)
    assert len(indices) == min(k, int(keep.sum()))  # k hits whenever k rows match
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-6)
    taught = taught_filtered_search(query, docs, k, rows)
    np.testing.assert_array_equal(taught[0], indices)


def test_filtering_after_the_top_k_loses_hits():
    rng = np.random.default_rng(0)
    docs = rh.l2_normalize(rng.standard_normal((200, 8)).astype(np.float32))
    query = docs[0]
    meta = [{"source": "a.md" if i % 10 else "b.pdf", "page": None, "section": None} for i in range(200)]
    rows = where_rows(meta, suffix=".pdf")
    after = [i for i in rh.search(query, docs, 5)[0] if meta[i]["source"] == "b.pdf"]
    before, _ = filtered_search(query, docs, 5, rows)
    assert len(before) == 5 and len(after) < 5


def test_where_checks_its_arguments():
    for bad in (dict(source=""), dict(section=3), dict(suffix="."), dict(pages=(3, 1)), dict(pages=0),
                dict(pages=(1, 2, 3)), dict(pages=True)):
        with pytest.raises(ValueError):
            Where(**bad)
    assert Where(suffix="PDF").suffix == ".pdf" and Where(pages=4).pages == (4, 4)
    with pytest.raises(ValueError, match="row numbers"):
        filtered_search(np.ones(2, np.float32) / np.sqrt(2), np.eye(2, dtype=np.float32), 1, np.array([5]))


def test_headings_markdown_and_restructuredtext():
    text = "Intro\n=====\n\ntext\n\n## Setup ##\nmore\n```\n# a comment in code\n```\nUsage\n-----\nend\n"
    heads = headings(text)
    assert [title for _, title in heads] == ["Intro", "Setup", "Usage"]
    assert section_at(heads, 0) == "Intro" and section_at(heads, text.index("more")) == "Setup"
    assert section_at(heads, text.index("a comment")) == "Setup" and section_at([], 5) is None


def test_pipeline_where(encoder, tmp_path):
    (tmp_path / "v2").mkdir()
    (tmp_path / "v3").mkdir()
    for version in ("v2", "v3"):
        (tmp_path / version / "install.md").write_text(
            f"# Install\n\nTo install version {version[1]}, run pip install tool=={version[1]}.0.\n\n"
            f"# Usage\n\nRun tool --help to see the options of version {version[1]}.\n")
    pipe = rh.RAGPipeline.from_files([tmp_path], encoder=encoder, chunk_tokens=20, overlap=0, k=3)
    hits = pipe.retrieve("how do I install it?", where=Where(source="*/v3/*"))
    assert len(hits) == min(3, sum("/v3/" in c.source for c in pipe.sources))
    assert all("/v3/" in hit.source.source for hit in hits)
    usage = pipe.retrieve("how do I install it?", where=Where(section="Usage"))
    assert usage and all("--help" in hit.document for hit in usage)
    with pytest.raises(NoMatchError, match="no chunk matches"):
        pipe.retrieve("install", where=Where(suffix="pdf"))
    with pytest.raises(TypeError, match="Where"):
        pipe.retrieve("install", where="*.md")
    plain = rh.RAGPipeline(["a text", "another"], encoder=encoder)
    with pytest.raises(ValueError, match="from_files"):
        plain.retrieve("a", where=Where(suffix="md"))
