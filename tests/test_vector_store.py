"""rag_helpers.engine.vector_store: Qdrant's answers checked against the course's exact search.

The reference is ``rag_helpers.search`` (notebook 03/04's exact top-k): on the
same vectors, a flat search of the store must return the same rows, best
first, and the same scores to 1e-5; a filtered search must equal that search
run on the filtered rows alone. Equal scores may come in another order (the
engine does not break ties by insertion order), so a swap is accepted only
between rows whose float64 scores agree to 1e-6.

The embedded engine (qdrant-edge-py) is tested throughout; the server code
path runs against qdrant-client's local mode, which implements the server's
API in Python (no server is started in CI).
"""
from __future__ import annotations

import hashlib
import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rag_helpers as rh

pytest.importorskip("qdrant_edge")
from rag_helpers.engine.vector_store import StoreFilter, VectorStore, key_to_point_id  # noqa: E402

DIM = 32
SOURCES = ("a.md", "b.md", "c.pdf", "d.txt", "e.pdf")
SECTIONS = ("Intro", "Usage", "FAQ")


def make_keys(n: int, salt: str = "") -> list[str]:
    return [hashlib.sha256(f"{salt}{i}".encode()).hexdigest() for i in range(n)]


def unit_rows(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def payloads_for(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed + 1000)
    out = []
    for i in range(n):
        page = None if rng.random() < 0.2 else int(rng.integers(1, 12))
        section = None if rng.random() < 0.2 else SECTIONS[int(rng.integers(len(SECTIONS)))]
        out.append({"source": SOURCES[int(rng.integers(len(SOURCES)))], "page": page, "section": section,
                    "text": f"chunk {i}"})
    return out


def assert_same_topk(rows: list[int], scores: np.ndarray, query: np.ndarray, docs: np.ndarray, k: int) -> None:
    """``rows``/``scores`` from the store equal ``rh.search(query, docs, k)``, up to near-tie swaps."""
    k = min(k, len(docs))
    ref_rows, ref_scores = rh.search(query, docs, k)
    assert len(rows) == k, (len(rows), k)
    assert len(set(rows)) == k
    assert scores.dtype == np.float32 and scores.shape == (k,)
    np.testing.assert_allclose(scores, ref_scores, rtol=0, atol=1e-5)
    q64 = query.astype(np.float64)
    for rank, (got, want) in enumerate(zip(rows, ref_rows)):
        if got != want:
            gap = abs(float(docs[got].astype(np.float64) @ q64) - float(docs[want].astype(np.float64) @ q64))
            assert gap < 1e-6, f"rank {rank}: row {got} instead of {want} (scores differ by {gap:.2e})"


def filled_store(location, n: int, seed: int = 0, **kw) -> tuple[VectorStore, list[str], np.ndarray, list[dict]]:
    keys, docs, payloads = make_keys(n, str(seed)), unit_rows(n, seed=seed), payloads_for(n, seed)
    store = VectorStore(location, DIM, **kw)
    store.upsert(keys, docs, payloads)
    return store, keys, docs, payloads


# ---------------------------------------------------------------------- exact search
@settings(max_examples=20)
@given(n=st.integers(1, 300), k=st.integers(1, 40), seed=st.integers(0, 2**32 - 1),
       duplicates=st.booleans())
def test_flat_search_gives_rh_search_top_k_and_scores(n, k, seed, duplicates):
    docs = unit_rows(n, seed=seed)
    if duplicates and n > 2:
        docs[n // 2:] = docs[: n - n // 2]  # exact ties: the order among them is free
    keys = make_keys(n, str(seed))
    row = {key: i for i, key in enumerate(keys)}
    query = unit_rows(1, seed=seed + 1)[0]
    with VectorStore(":memory:", DIM) as store:
        store.upsert(keys, docs, payloads_for(n, seed))
        assert len(store) == n
        found, scores = store.search(query, k)
    assert_same_topk([row[key] for key in found], scores, query, docs, k)


def test_flat_search_on_real_embeddings_and_a_filter(encoder):
    from rag_helpers.documents import load_labelled_questions, load_python_docs

    chunks, sources = [], []
    for doc in load_python_docs():
        for para in [p for p in doc.text.split("\n\n") if len(p) > 80][:12]:
            chunks.append(para[:600])  # inside the encoder's 256-token window
            sources.append(doc.source)
    chunks, sources = chunks[:160], sources[:160]
    docs = rh.embed(chunks, encoder)
    queries = rh.embed([q.question for q in load_labelled_questions()[:16]], encoder)
    keys = [hashlib.sha256(text.encode()).hexdigest() for text in chunks]
    assert len(set(keys)) == len(keys)
    row = {key: i for i, key in enumerate(keys)}
    payloads = [{"source": s, "page": None, "section": None} for s in sources]
    with VectorStore(":memory:", docs.shape[1]) as store:
        store.upsert(keys, docs, payloads)
        for query in queries:
            found, scores = store.search(query, 10)
            assert_same_topk([row[key] for key in found], scores, query, docs, 10)
        # Restricted to one page of the docs: the same as searching that page's chunks alone.
        one = sources[len(sources) // 2]
        sub = np.flatnonzero(np.array(sources) == one)
        found, scores = store.search(queries[0], 5, where=StoreFilter(sources=(one,)))
        assert_same_topk([int(np.flatnonzero(sub == row[key])[0]) for key in found], scores, queries[0],
                         docs[sub], 5)


# ---------------------------------------------------------------------- filters
@pytest.fixture(scope="module")
def shared_store():
    store, keys, docs, payloads = filled_store(":memory:", 600, seed=7)
    yield store, keys, docs, payloads
    store.close()


filters = st.builds(
    StoreFilter,
    sources=st.none() | st.lists(st.sampled_from(SOURCES + ("missing.md",)), max_size=3).map(tuple),
    pages=st.none() | st.tuples(st.integers(-1, 12), st.integers(0, 14)).filter(lambda p: p[0] <= p[1]),
    sections=st.none() | st.lists(st.sampled_from(SECTIONS + ("Nowhere",)), max_size=2).map(tuple),
)


@settings(max_examples=40)
@given(where=filters, k=st.integers(1, 30), seed=st.integers(0, 1000))
def test_a_filter_equals_brute_force_on_the_filtered_rows(shared_store, where, k, seed):
    store, keys, docs, payloads = shared_store
    query = unit_rows(1, seed=seed)[0]
    subset = np.array([i for i, p in enumerate(payloads) if where.matches(p)], dtype=np.int64)
    found, scores = store.search(query, k, where=where)
    if len(subset) == 0:
        assert found == [] and scores.shape == (0,)
        return
    # Applied before the top-k: k results whenever k chunks match.
    assert len(found) == min(k, len(subset))
    row = {key: i for i, key in enumerate(keys)}
    local = {int(r): j for j, r in enumerate(subset)}
    assert all(where.matches(payloads[row[key]]) for key in found)
    assert_same_topk([local[row[key]] for key in found], scores, query, docs[subset], k)


def test_pages_exclude_chunks_without_a_page(shared_store):
    store, keys, docs, payloads = shared_store
    query = unit_rows(1, seed=3)[0]
    found, _ = store.search(query, 600, where=StoreFilter(pages=(-10**6, 10**6)))
    with_page = {keys[i] for i, p in enumerate(payloads) if p["page"] is not None}
    assert set(found) == with_page and len(with_page) < len(keys)


# ---------------------------------------------------------------------- updates
def test_upsert_replaces_and_delete_removes(tmp_path):
    store, keys, docs, payloads = filled_store(tmp_path / "store", 200)
    with store:
        query = docs[17]
        # Replace row 17's vector and payload: the old one is gone, the count unchanged.
        new_vec = unit_rows(1, seed=99)[0]
        store.upsert([keys[17]], new_vec[None, :], [{"source": "moved.md", "page": 3, "section": None}])
        assert len(store) == 200 and store.keys() == set(keys)
        found, scores = store.search(query, 1)
        assert found[0] != keys[17]
        found, scores = store.search(new_vec, 1)
        assert found == [keys[17]] and abs(scores[0] - 1.0) < 1e-5
        assert store.search(new_vec, 5, where=StoreFilter(sources=("moved.md",)))[0] == [keys[17]]
        assert store.search(query, 5, where=StoreFilter(sources=(payloads[17]["source"],)))[0][0] != keys[17]
        # Delete: the keys never come back, even when every chunk is asked for.
        gone = keys[:50]
        store.delete(gone + [make_keys(1, "never stored")[0]])
        assert len(store) == 150 and store.keys() == set(keys[50:])
        for q in (docs[0], docs[10], new_vec):
            found, _ = store.search(q, 200)
            assert len(found) == 150 and not set(found) & set(gone)
        rest = np.arange(50, 200)
        row = {key: i for i, key in enumerate(keys)}
        docs_now = docs.copy()
        docs_now[17] = new_vec
        found, scores = store.search(docs[3], 10)
        assert_same_topk([int(np.flatnonzero(rest == row[key])[0]) for key in found], scores, docs[3],
                         docs_now[rest], 10)
        # Nothing to add is a no-op, not an error (an unchanged folder).
        store.upsert([], np.empty((0, DIM), np.float32), [])
        store.delete([])
        assert len(store) == 150


def test_a_store_reopens_from_its_folder_with_the_same_results(tmp_path):
    folder = tmp_path / "index"
    store, keys, docs, payloads = filled_store(folder, 300, seed=3)
    queries = unit_rows(5, seed=11)
    where = StoreFilter(sources=("a.md", "c.pdf"), pages=(2, 9))
    store.delete(keys[:7])
    before = [store.search(q, 10) for q in queries] + [store.search(queries[0], 10, where=where)]
    everything = store.search(docs[0], 300)[0]
    store.close()
    store.close()  # twice is fine
    with pytest.raises(ValueError, match="closed"):
        store.search(queries[0], 1)
    with VectorStore(folder, DIM) as again:
        assert len(again) == 293 and again.keys() == set(keys[7:])
        assert again.search(docs[0], 300)[0] == everything
        after = [again.search(q, 10) for q in queries] + [again.search(queries[0], 10, where=where)]
    for (k1, s1), (k2, s2) in zip(before, after):
        assert k2 == k1
        np.testing.assert_array_equal(s2, s1)


# ---------------------------------------------------------------------- HNSW
def test_hnsw_search_is_approximate_with_high_recall_and_true_scores(tmp_path):
    # 384-d: 1,200 vectors are 1.8 MB, above HNSW_FULL_SCAN_KB, so the graph is searched, not a scan.
    n, dim = 1200, 384
    docs = unit_rows(n, dim, seed=5)
    keys = make_keys(n, "h")
    row = {key: i for i, key in enumerate(keys)}
    queries = docs[:20] * 0.8 + unit_rows(20, dim, seed=6) * 0.6  # near a stored chunk, like a real question
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    with VectorStore(tmp_path / "h", dim, hnsw=True) as store:
        store.upsert(keys, docs, payloads_for(n))
        recall = []
        for q in queries:
            found, scores = store.search(q, 10, exact=False)
            rows = [row[key] for key in found]
            # Whatever the graph finds, its scores are the true cosines.
            np.testing.assert_allclose(scores, docs[rows] @ q, atol=1e-5)
            assert list(scores) == sorted(scores, reverse=True)
            recall.append(len(set(rows) & set(rh.search(q, docs, 10)[0])) / 10)
        assert store._backend._shard.info().indexed_vectors_count == n  # the graph exists, and was used
        assert np.mean(recall) >= 0.9, np.mean(recall)
        # A filter applies before the top-k on the graph too: k results, nearly the exact ones.
        payloads = payloads_for(n)
        for where in (StoreFilter(sources=("a.md",)), StoreFilter(sources=SOURCES[:4], sections=SECTIONS[:2])):
            subset = np.array([i for i, p in enumerate(payloads) if where.matches(p)])
            hits = 0
            for q in queries[:8]:
                found, _ = store.search(q, 10, where=where, exact=False)
                assert len(found) == 10 and all(where.matches(payloads[row[key]]) for key in found)
                hits += len({row[key] for key in found} & set(subset[rh.search(q, docs[subset], 10)[0]]))
            assert hits / 80 >= 0.8, (where, hits / 80)
        # Flat search on the same store is still exact.
        found, scores = store.search(queries[0], 10, exact=True)
        assert_same_topk([row[key] for key in found], scores, queries[0], docs, 10)
    with VectorStore(tmp_path / "flat", dim) as flat:
        with pytest.raises(ValueError, match="hnsw=True"):
            flat.search(queries[0], 3, exact=False)


# ---------------------------------------------------------------------- bad input
def test_bad_input_is_refused_early_with_a_clear_error(tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("not a store")
    with pytest.raises(ValueError, match="is a file"):
        VectorStore(a_file, DIM)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.md").write_text("x")
    with pytest.raises(ValueError, match="other files"):
        VectorStore(tmp_path / "other", DIM)
    for bad_dim in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="dim"):
            VectorStore(tmp_path / "d", bad_dim)
    with pytest.raises(ValueError, match="empty"):
        VectorStore("", DIM)

    keys, docs, payloads = make_keys(4), unit_rows(4), payloads_for(4)
    with VectorStore(tmp_path / "s", DIM) as store:
        with pytest.raises(ValueError, match="columns"):
            store.upsert(keys, unit_rows(4, DIM + 1), payloads)
        with pytest.raises(ValueError, match="not L2-normalized"):
            store.upsert(keys, docs * 2, payloads)
        nan = docs.copy()
        nan[2, 0] = np.nan
        with pytest.raises(ValueError, match="NaN"):
            store.upsert(keys, nan, payloads)
        with pytest.raises(ValueError, match="same length"):
            store.upsert(keys[:3], docs, payloads)
        with pytest.raises(ValueError, match="distinct"):
            store.upsert([keys[0]] * 4, docs, payloads)
        with pytest.raises(ValueError, match="first 32 hex"):
            store.upsert([f"{i:064x}" for i in range(4)], docs, payloads)
        with pytest.raises(ValueError, match=r"keys\[1\].*64 lowercase hex"):
            store.upsert([keys[0], "chunk-1", keys[2], keys[3]], docs, payloads)
        with pytest.raises(ValueError, match=r"payloads\[0\].*source"):
            store.upsert(keys, docs, [{"page": 1}] + payloads[1:])
        with pytest.raises(ValueError, match="page"):
            store.upsert(keys, docs, [{"source": "a", "page": "3"}] + payloads[1:])
        with pytest.raises(ValueError, match="key"):
            store.upsert(keys, docs, [{"source": "a", "key": keys[1]}] + payloads[1:])
        with pytest.raises(TypeError, match="keys"):
            store.upsert(keys[0], docs[:1], payloads[:1])
        assert len(store) == 0  # nothing half-written by a refused call
        store.upsert(keys, docs, payloads)
        q = docs[0]
        for bad_k, err in ((0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError)):
            with pytest.raises(err, match="k"):
                store.search(q, bad_k)
        with pytest.raises(ValueError, match="dim"):
            store.search(unit_rows(1, DIM + 1)[0], 2)
        with pytest.raises(ValueError, match="not L2-normalized"):
            store.search(q * 3, 2)
        with pytest.raises(ValueError, match="1-D"):
            store.search(docs[:2], 2)
        with pytest.raises(TypeError, match="StoreFilter"):
            store.search(q, 2, where={"sources": ("a.md",)})
        # A folder is locked while open: a second store on it is refused, not corrupted.
        with pytest.raises(ValueError, match="open elsewhere"):
            VectorStore(tmp_path / "s", DIM)
    with pytest.raises(ValueError, match="dim=16"):
        VectorStore(tmp_path / "s", 16)
    with pytest.raises(ValueError, match="greater than"):
        StoreFilter(pages=(5, 2))
    with pytest.raises(TypeError, match="tuple of strings"):
        StoreFilter(sources="a.md")
    with VectorStore(tmp_path / "s", DIM) as store:  # the refused opens left it intact
        assert len(store) == 4
        assert store.search(docs[1], 4, where=StoreFilter(sources=()))[0] == []


def test_key_to_point_id_is_the_uuid_of_the_first_half():
    key = make_keys(1)[0]
    assert key_to_point_id(key) == f"{key[:8]}-{key[8:12]}-{key[12:16]}-{key[16:20]}-{key[20:32]}"


def test_importing_the_module_loads_no_database_client():
    code = ("import sys, rag_helpers.engine.vector_store; "
            "print(sorted(m for m in sys.modules if m.startswith(('qdrant', 'grpc', 'httpx'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


# ---------------------------------------------------------------------- the server code path
def test_the_server_code_path_gives_the_same_results():
    qdrant_client = pytest.importorskip("qdrant_client")
    n = 250
    keys, docs, payloads = make_keys(n, "srv"), unit_rows(n, seed=21), payloads_for(n, 21)
    row = {key: i for i, key in enumerate(keys)}
    with warnings.catch_warnings():
        # Local mode says payload indexes and search_params do nothing there; a server uses them.
        warnings.simplefilter("ignore", UserWarning)
        with VectorStore._from_qdrant_client(qdrant_client.QdrantClient(":memory:"), DIM) as store:
            store.upsert(keys, docs, payloads)
            assert len(store) == n and store.keys() == set(keys)
            query = unit_rows(1, seed=22)[0]
            found, scores = store.search(query, 10)
            assert_same_topk([row[key] for key in found], scores, query, docs, 10)
            where = StoreFilter(sources=("b.md", "e.pdf"), pages=(3, 8))
            subset = np.array([i for i, p in enumerate(payloads) if where.matches(p)])
            found, scores = store.search(query, 10, where=where)
            local = {int(r): j for j, r in enumerate(subset)}
            assert_same_topk([local[row[key]] for key in found], scores, query, docs[subset], 10)
            store.delete(keys[:100])
            assert len(store) == n - 100
            assert not set(store.search(query, n)[0]) & set(keys[:100])
