"""Scale: below the float32 floor with fewer bytes per vector, memory maps, and FAISS's indexes.

Exact float32 search reads every byte of the document matrix: ``docs @ q`` is
its floor. Below it only by reading fewer bytes, at some cost in recall:

* ours (``rag_helpers.engine.quantization``): float16 (2 bytes a value), int8 with a
  scale per dimension calibrated on the corpus (1 byte), binary sign codes
  (1 bit) with the shortlist rescored by the float32 vectors; and exact
  search over a memory-mapped index file (``rag_helpers.engine.index_store``);
* FAISS, in the same run on the same arrays: ``IndexFlatIP`` (exact),
  ``IndexScalarQuantizer`` (8-bit), ``IndexBinaryFlat`` (Hamming) and
  ``IndexHNSWFlat`` (a graph: approximate, at a few ``efSearch``).

Two data sets:

* **recall** on real embeddings: all-MiniLM-L6-v2 vectors of real text: the
  chunks of the shipped Python docs corpus (``rag_helpers.engine.corpus``, 200-token
  chunks) and the paragraphs of the docstrings of Python's standard library
  and of NumPy, SciPy and scikit-learn as installed (read from disk with
  ``ast``; 100 to 1,500 characters, each once). The queries are the corpus's
  labelled and unanswerable questions. recall@10 = the share of the exact
  float32 top 10 that a method returns. Embeddings are cached (``embed_cached``).
* **time and memory** on random unit vectors, N = 1e6 × 384 (``--quick``: 1e5).
  One query, k = 10, medians; and a batch of 64 against ``IndexFlatIP`` with
  BLAS forced.
"""
from __future__ import annotations

import ast
import re
import sysconfig
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

import rag_helpers as rh
from rag_helpers.engine.embedding_cache import embed_cached
from rag_helpers.engine import index_store, quantization as qz

from .common import SEED, Goal, Section, faiss_blas_search, fmt_ms, fmt_n, fmt_ratio, measure, random_unit_vectors, same_ranking, table
from .memory import rss_peak_during

TITLE = "Scale: fewer bytes per vector, memory maps, and FAISS's indexes"
N = 10**6
QUICK_N = 10**5
K = 10
BATCH = 64
BATCH_KS = (10, 100)
EF_SEARCH = (16, 64, 256)
HNSW_M = 32
SHORTLISTS = (10, 40, 100, 250, 500, 1000, 2000)  # the recall sweep of binary + rescoring
EMBED_PIECE = 2048  # texts per cache file
HELD_OUT = 300  # corpus texts taken out to serve as queries (the "paragraphs as queries" column)
PACKAGES = ("numpy", "scipy", "sklearn")  # docstrings read for more real text (quick: the standard library only)
_SKIP_DIRS = {"test", "tests", "testing", "__pycache__", "site-packages", "idlelib", "lib2to3", "turtledemo",
              "ensurepip"}


# ------------------------------------------------------------------ real text
def docstring_paragraphs(root: Path) -> list[str]:
    """Paragraphs (100 to 1,500 characters) of every docstring under ``root``, in file order, each once."""
    seen: dict[str, None] = {}
    files = sorted(p for p in root.rglob("*.py") if not _SKIP_DIRS & set(p.relative_to(root).parts))
    for path in files:
        try:
            tree = ast.parse(path.read_bytes())
        except (SyntaxError, ValueError):  # a file for another Python version: not our text
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                for paragraph in re.split(r"\n\s*\n", ast.get_docstring(node) or ""):
                    text = " ".join(paragraph.split())
                    if 100 <= len(text) <= 1500:
                        seen.setdefault(text, None)
    return list(seen)


def real_embeddings(quick: bool) -> tuple[np.ndarray, np.ndarray, str, int]:
    """(documents (n, 384), queries (q, 384), what they are, how many queries have an answer in the corpus).

    all-MiniLM-L6-v2 vectors of real text; the queries are the labelled questions, then the unanswerable ones.
    """
    import importlib.util

    from rag_helpers.engine.chunking import chunk_documents
    from rag_helpers.engine.corpus import load_labelled_questions, load_python_docs, load_unanswerable_questions

    encoder = rh.load_encoder(device="cpu")
    chunks = [c.text for c in chunk_documents(load_python_docs(), encoder.tokenizer)]
    roots = {"the standard library": Path(sysconfig.get_paths()["stdlib"])}
    if not quick:
        for package in PACKAGES:
            spec = importlib.util.find_spec(package)
            if spec is not None and spec.submodule_search_locations:
                roots[package] = Path(spec.submodule_search_locations[0])
    seen: set[str] = set()
    groups = {"corpus chunks": _unseen(chunks, seen)}
    for name, root in roots.items():
        groups[f"{name} docstring paragraphs"] = _unseen(docstring_paragraphs(root), seen)
    texts = [text for group in groups.values() for text in group]
    answerable = [q.question for q in load_labelled_questions("all")]
    questions = answerable + [q.question for q in load_unanswerable_questions("all")]
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rh.LongDocumentWarning)  # a few paragraphs exceed 256 tokens
        # Cached in pieces of each group: an interrupted run keeps what it
        # embedded, and --quick's texts are a prefix of the full run's.
        docs = np.concatenate([embed_cached(group[i : i + EMBED_PIECE], encoder)
                               for group in groups.values() for i in range(0, len(group), EMBED_PIECE)])
        queries = embed_cached(questions, encoder)
    print(f"  scale: {len(texts):,} real texts and {len(questions)} questions embedded (or loaded from the cache) "
          f"in {time.perf_counter() - start:.0f} s", flush=True)
    described = ", ".join(f"{len(group):,} {what}" for what, group in groups.items())
    return (docs, queries, f"N = {len(texts):,} texts ({described}); {len(questions)} questions "
            f"({len(answerable)} labelled, {len(questions) - len(answerable)} unanswerable)", len(answerable))


def _unseen(texts: list[str], seen: set[str]) -> list[str]:
    """The texts not in ``seen``, each once, in order; ``seen`` grows with them."""
    fresh = []
    for text in texts:
        if text not in seen:
            seen.add(text)
            fresh.append(text)
    return fresh


def recall_at(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of each row of ``exact`` (q, k) found in the same row of ``found``."""
    return float(np.mean([len(set(f) & set(e)) / len(e) for f, e in zip(np.atleast_2d(found), np.atleast_2d(exact))]))


# ------------------------------------------------------------------ FAISS peers
def _faiss_indexes(docs: np.ndarray, codes: np.ndarray, *, hnsw: bool) -> tuple[dict, dict, dict]:
    """(indexes, build seconds, bytes) for IndexFlatIP, IndexScalarQuantizer, IndexBinaryFlat (and IndexHNSWFlat)."""
    import faiss

    n, d = docs.shape
    indexes, build, size = {}, {}, {}
    start = time.perf_counter()
    indexes["flat"] = faiss.IndexFlatIP(d)
    indexes["flat"].add(docs)
    build["flat"], size["flat"] = time.perf_counter() - start, docs.nbytes
    start = time.perf_counter()
    sq = faiss.IndexScalarQuantizer(d, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
    sq.train(docs)
    sq.add(docs)
    indexes["sq8"], build["sq8"], size["sq8"] = sq, time.perf_counter() - start, n * sq.sa_code_size()
    start = time.perf_counter()
    indexes["binary"] = faiss.IndexBinaryFlat(d)
    indexes["binary"].add(codes)
    build["binary"], size["binary"] = time.perf_counter() - start, codes.nbytes
    if hnsw:
        start = time.perf_counter()
        index = faiss.IndexHNSWFlat(d, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.add(docs)
        indexes["hnsw"], build["hnsw"] = index, time.perf_counter() - start
        size["hnsw"] = docs.nbytes + index.hnsw.neighbors.size() * 4 + index.hnsw.levels.size() * 4
    return indexes, build, size


def _hnsw_search(index, queries: np.ndarray, k: int, ef: int):
    index.hnsw.efSearch = ef
    return index.search(queries, k)


# ------------------------------------------------------------------ the parts
def _recall_part(quick: bool) -> dict:
    """Every method's recall@10 on real embeddings, and the shortlist sweep of binary + rescoring."""
    docs, queries, described, n_answerable = real_embeddings(quick)
    n = len(docs)
    exact, _ = rh.search(queries, docs, K)
    center = docs.mean(axis=0)
    codes = qz.binary_codes(docs)
    centered = qz.binary_codes(docs, center=center)
    indexes, _, _ = _faiss_indexes(docs, codes, hnsw=True)
    int8 = qz.quantize_int8(docs)
    recall = {
        "float32": recall_at(exact, exact),
        "float16": recall_at(qz.search_float16(queries, qz.to_float16(docs), K)[0], exact),
        "int8": recall_at(qz.search_int8(queries, int8, K)[0], exact),
        "int8 global": recall_at(qz.search_int8(queries, qz.quantize_int8(docs, per_dimension=False), K)[0], exact),
        "int8 + rescore 4k": recall_at(qz.search_int8(queries, int8, K, doc_vecs=docs)[0], exact),
        "binary 4k": recall_at(qz.search_binary(queries, codes, docs, K, shortlist=4 * K)[0], exact),
        "binary default": recall_at(qz.search_binary(queries, codes, docs, K)[0], exact),
        "binary centered 4k": recall_at(qz.search_binary(queries, centered, docs, K, 4 * K, center=center)[0], exact),
        "binary centered default": recall_at(qz.search_binary(queries, centered, docs, K, center=center)[0], exact),
        "faiss flat": recall_at(indexes["flat"].search(queries, K)[1], exact),
        "faiss sq8": recall_at(indexes["sq8"].search(queries, K)[1], exact),
        "faiss binary (Hamming top 10, no rescoring)": recall_at(
            indexes["binary"].search(qz.binary_codes(queries), K)[1], exact),
    }
    for ef in EF_SEARCH:
        recall[f"faiss hnsw ef={ef}"] = recall_at(_hnsw_search(indexes["hnsw"], queries, K, ef)[1], exact)
    # The same codes with other queries: only the questions that have an
    # answer in the corpus, and corpus texts themselves (held out of it).
    rng = np.random.default_rng(SEED)
    held = np.zeros(n, dtype=bool)
    held[rng.choice(n, HELD_OUT, replace=False)] = True
    rest, rest_codes = docs[~held], codes[~held]
    exact_rest, _ = rh.search(docs[held], rest, K)
    sweep = {}
    for m in (m for m in SHORTLISTS if m <= n - HELD_OUT):
        found = qz.search_binary(queries, codes, docs, K, shortlist=m)[0]
        sweep[m] = {
            "questions": recall_at(found, exact),
            "answerable": recall_at(found[:n_answerable], exact[:n_answerable]),
            "paragraphs": recall_at(qz.search_binary(docs[held], rest_codes, rest, K, shortlist=m)[0], exact_rest),
            "centered": recall_at(qz.search_binary(queries, centered, docs, K, shortlist=m, center=center)[0], exact),
        }
    # The shortlist a recall needs, against N: the same questions over a quarter, a half and all of the texts.
    scaling = {}
    for share in (4, 2, 1):
        part = np.sort(rng.choice(n, n // share, replace=False)) if share > 1 else np.arange(n)
        exact_part, _ = rh.search(queries, docs[part], K)
        scaling[len(part)] = {m: recall_at(qz.search_binary(queries, codes[part], docs[part], K, shortlist=m)[0],
                                           exact_part) for m in SHORTLISTS if m <= len(part)}
    print("  scale recall@10: " + ", ".join(f"{m} {r:.3f}" for m, r in recall.items()), flush=True)
    return {"described": described, "n": n, "recall": recall, "sweep": sweep, "scaling": scaling,
            "default_shortlist": qz.default_shortlist(K, n), "held_out": HELD_OUT}


def _speed_part(docs: np.ndarray, query: np.ndarray, batch: np.ndarray, quick: bool) -> dict:
    """One query and a batch of 64 on random unit vectors: every method's time, build time and bytes.

    The indexes it builds (gigabytes at 1e6) are freed when it returns.
    """
    n = len(docs)
    build, size = {}, {}
    start = time.perf_counter()
    codes = qz.binary_codes(docs)
    build["binary"], size["binary"] = time.perf_counter() - start, codes.nbytes
    start = time.perf_counter()
    int8 = qz.quantize_int8(docs)
    build["int8"], size["int8"] = time.perf_counter() - start, int8.nbytes
    start = time.perf_counter()
    docs16 = qz.to_float16(docs)
    build["float16"], size["float16"] = time.perf_counter() - start, docs16.nbytes
    size["float32"] = docs.nbytes
    print(f"  scale N={fmt_n(n)}: building FAISS's indexes (HNSW M={HNSW_M} takes minutes at 1e6) ...", flush=True)
    indexes, faiss_build, faiss_size = _faiss_indexes(docs, codes, hnsw=True)
    build.update({f"faiss {k}": v for k, v in faiss_build.items()})
    size.update({f"faiss {k}": v for k, v in faiss_size.items()})
    query_code = qz.binary_codes(query)
    m_default = qz.default_shortlist(K, n)
    fns = {
        "floor": lambda: docs @ query,
        "float32": lambda: rh.search(query, docs, K),
        "float16": lambda: qz.search_float16(query, docs16, K),
        "int8": lambda: qz.search_int8(query, int8, K),
        "int8 + rescore 4k": lambda: qz.search_int8(query, int8, K, doc_vecs=docs),
        "hamming scan (4k shortlist)": lambda: qz.hamming_shortlist(query_code, codes, 4 * K),
        "binary + rescore 4k": lambda: qz.search_binary(query, codes, docs, K, shortlist=4 * K),
        "binary + rescore default": lambda: qz.search_binary(query, codes, docs, K),
        "faiss flat": lambda: indexes["flat"].search(query[None], K),
        "faiss sq8": lambda: indexes["sq8"].search(query[None], K),
        "faiss binary (k = 4k)": lambda: indexes["binary"].search(query_code[None], 4 * K),
    }
    for ef in EF_SEARCH:
        fns[f"faiss hnsw ef={ef}"] = lambda ef=ef: _hnsw_search(indexes["hnsw"], query[None], K, ef)
    timings = measure(fns, repeats=3 if quick else 7, max_seconds=4.0 if quick else 8.0)
    seconds = {name: t.median for name, t in timings.items()}
    print("  scale one query: " + ", ".join(f"{m} {s * 1e3:.2f} ms" for m, s in seconds.items()), flush=True)

    # Recall on these random vectors, for the record: they have no structure
    # for codes or graphs to use, the worst case for every approximate method.
    exact_many, _ = rh.search(batch, docs, K)
    random_recall = {
        "int8": recall_at(qz.search_int8(batch, int8, K)[0], exact_many),
        "binary + rescore 4k": recall_at(qz.search_binary(batch, codes, docs, K, shortlist=4 * K)[0], exact_many),
        "binary + rescore default": recall_at(qz.search_binary(batch, codes, docs, K)[0], exact_many),
        "faiss sq8": recall_at(indexes["sq8"].search(batch, K)[1], exact_many),
    }
    for ef in EF_SEARCH:
        random_recall[f"faiss hnsw ef={ef}"] = recall_at(_hnsw_search(indexes["hnsw"], batch, K, ef)[1], exact_many)

    batch_results = []
    for k in BATCH_KS:
        timed = measure({
            "search": lambda k=k: rh.search(batch, docs, k),
            "faiss": lambda k=k: indexes["flat"].search(batch, k),
            "faiss_blas": lambda k=k: faiss_blas_search(indexes["flat"], batch, k),
        }, repeats=3 if quick else 5, max_seconds=4.0 if quick else 8.0)
        ours = rh.search(batch, docs, k)[0]
        check = same_ranking(ours, faiss_blas_search(indexes["flat"], batch, k)[1], batch, docs)
        batch_results.append({"k": k, "seconds": {m: t.median for m, t in timed.items()}, "check": check})
        print(f"  scale batch of {BATCH}, k={k}: " + ", ".join(f"{m} {t.ms:.1f} ms" for m, t in timed.items()),
              flush=True)
    hamming_same = np.array_equal(
        np.sort(qz.hamming_shortlist(query_code, codes, 4 * K)),
        np.sort(indexes["binary"].search(query_code[None], 4 * K)[1][0]))
    return {"n": n, "seconds": seconds, "build": build, "size": size, "random_recall": random_recall,
            "batch": batch_results, "m_default": m_default, "hamming_same_set": bool(hamming_same)}


def _mmap_part(docs: np.ndarray, query: np.ndarray, batch: np.ndarray) -> dict:
    """Exact search over an index file: peak RSS growth against the file's size, and the same results."""
    expected_one = rh.search(query, docs, K)
    expected_batch = rh.search(batch, docs, K)
    n = len(docs)
    with tempfile.TemporaryDirectory(prefix="rag-scale-") as tmp:
        folder = Path(tmp) / "index"
        start = time.perf_counter()
        index_store.save_index(folder, docs, [f"document {i}" for i in range(n)], model="random unit vectors",
                               codes=False)
        save_s = time.perf_counter() - start
        file_bytes = (folder / "vectors.npy").stat().st_size
        got, rss, seconds = _search_the_file(folder, query, batch)
    same = (np.array_equal(got["one"][0], expected_one[0]) and np.array_equal(got["one"][1], expected_one[1])
            and np.array_equal(got["batch"][0], expected_batch[0])
            and np.array_equal(got["batch"][1], expected_batch[1]))
    print(f"  scale mmap: file {file_bytes / 2**20:,.0f} MiB, peak RSS growth "
          + ", ".join(f"{k} {v / 2**20:,.0f} MiB" for k, v in rss.items()) + f"; identical: {same}", flush=True)
    return {"file_bytes": file_bytes, "rss": rss, "identical": same, "save_s": save_s, "seconds": seconds}


def _search_the_file(folder: Path, query: np.ndarray, batch: np.ndarray) -> tuple[dict, dict, float]:
    """(results, peak RSS growth per search, seconds per query): the maps are closed when it returns."""
    index = index_store.open_index(folder)
    got = {}
    rss = {
        "one query": rss_peak_during(lambda: got.setdefault("one", index.search(query, K))),
        f"batch of {BATCH}": rss_peak_during(lambda: got.setdefault("batch", index.search(batch, K))),
    }
    seconds = measure({"mmap one query": lambda: index.search(query, K)}, repeats=5)["mmap one query"].median
    # The same search on a plain np.load(mmap_mode="r"), its pages never released:
    plain = np.load(folder / "vectors.npy", mmap_mode="r", allow_pickle=False)
    rss["plain memmap, one query (no page release)"] = rss_peak_during(lambda: rh.search(query, plain, K))
    return got, rss, seconds


def run(quick: bool = False) -> Section:
    import faiss

    faiss.omp_set_num_threads(rh.engine.blocked_search.usable_cpus())
    recall = _recall_part(quick)
    docs = random_unit_vectors(QUICK_N if quick else N)
    query = random_unit_vectors(1, seed=SEED + 1)[0]
    batch = random_unit_vectors(BATCH, seed=SEED + 2)
    speed = _speed_part(docs, query, batch, quick)
    speed["mmap"] = _mmap_part(docs, query, batch)
    return _section(recall, speed, quick)


# ------------------------------------------------------------------ the report
_ROWS = [  # (label, key in the speed part, key in the recall part, key of its bytes and build time)
    ("float32, exact (`rag_helpers.search`)", "float32", "float32", "float32"),
    ("float32, exact, memory-mapped file (`DiskIndex.search`)", "mmap", "float32", "mmap"),
    ("float16 (`search_float16`)", "float16", "float16", "float16"),
    ("int8, scale per dimension (`search_int8`)", "int8", "int8", "int8"),
    ("int8 + float32 rescoring of 4k", "int8 + rescore 4k", "int8 + rescore 4k", "int8"),
    ("binary + rescoring of 4k (`search_binary`)", "binary + rescore 4k", "binary 4k", "binary"),
    ("binary + rescoring, default shortlist", "binary + rescore default", "binary default", "binary"),
    ("FAISS IndexFlatIP (exact)", "faiss flat", "faiss flat", "faiss flat"),
    ("FAISS IndexScalarQuantizer, 8-bit", "faiss sq8", "faiss sq8", "faiss sq8"),
    ("FAISS IndexBinaryFlat, Hamming top 4k (no rescoring)", "faiss binary (k = 4k)", None, "faiss binary"),
] + [(f"FAISS IndexHNSWFlat, M = {HNSW_M}, efSearch = {ef}", f"faiss hnsw ef={ef}", f"faiss hnsw ef={ef}",
      "faiss hnsw") for ef in EF_SEARCH]


def _section(recall: dict, speed: dict, quick: bool) -> Section:
    n = speed["n"]
    s = dict(speed["seconds"], mmap=speed["mmap"]["seconds"])
    floor = s["floor"]
    section = Section(TITLE)
    size = dict(speed["size"], mmap=speed["mmap"]["file_bytes"])
    build = dict(speed["build"], mmap=speed["mmap"]["save_s"])
    rows = []
    for label, time_key, recall_key, what in _ROWS:
        rows.append([
            label, f"{size[what] / n:,.0f}" if size[what] >= 10 * n else f"{size[what] / n:.1f}",
            fmt_ms(s[time_key]), fmt_ratio(s[time_key] / floor),
            "" if recall_key is None else f"{recall['recall'][recall_key]:.3f}",
            fmt_ms(build[what]) if what in build else "",
        ])
    section.tables.append(
        f"**One query, k = {K}**: time on {n:,} random unit vectors (384-d), recall@10 against exact float32 search "
        f"on real embeddings ({recall['described']}). The floor `docs @ q` took {fmt_ms(floor)} ms.\n\n"
        + table(["method", "bytes / vector", "ms / query", "÷ floor", "recall@10 (real)", "build ms"], rows)
        + "\n\nbuild ms: quantizing, encoding or indexing the N vectors (for the memory map: writing the file).")
    sweep_rows = [[m, f"{r['questions']:.3f}", f"{r['answerable']:.3f}", f"{r['paragraphs']:.3f}",
                   f"{r['centered']:.3f}"] for m, r in recall["sweep"].items()]
    section.tables.append(
        f"**Binary codes + rescoring: recall@10 against the shortlist** (real embeddings, N = {recall['n']:,}; "
        f"the default for k = {K} is {recall['default_shortlist']}):\n\n"
        + table(["codes rescored", "all questions", "answerable questions",
                 f"{recall['held_out']} texts as queries (held out)", "all questions, codes of x − mean"],
                sweep_rows))
    grid = [m for m in SHORTLISTS if all(m in row for row in recall["scaling"].values())]
    section.tables.append(
        "**The shortlist a recall needs grows with N**: recall@10 of binary + rescoring, all questions, over a "
        "quarter, a half and all of the real texts:\n\n"
        + table(["N", *[f"{m} rescored" for m in grid]],
                [[f"{size:,}", *[f"{row[m]:.3f}" for m in grid]] for size, row in recall["scaling"].items()]))
    batch_rows = []
    for r in speed["batch"]:
        t = r["seconds"]
        batch_rows.append([r["k"], fmt_ms(t["search"]), fmt_ms(t["faiss"]), fmt_ratio(t["faiss"] / t["search"]),
                           fmt_ms(t["faiss_blas"]), fmt_ratio(t["faiss_blas"] / t["search"]), r["check"][0]])
    section.tables.append(
        f"**A batch of {BATCH} queries, N = {fmt_n(n)}** (ratios above 1: `search` is faster):\n\n"
        + table(["k", "search ms", "IndexFlatIP ms", "÷ search", "IndexFlatIP BLAS-forced ms", "÷ search",
                 "indices vs BLAS-forced"], batch_rows))
    mm = speed["mmap"]
    mmap_rows = [[what, f"{b / 2**20:,.0f}", f"{b / mm['file_bytes']:.3f}x"] for what, b in mm["rss"].items()]
    section.tables.append(
        f"**Memory-mapped exact search** (`index_store.open_index`, N = {fmt_n(n)}: a "
        f"{mm['file_bytes'] / 2**20:,.0f} MiB vectors.npy; results identical to in-memory search: "
        f"{'yes' if mm['identical'] else '**no**'}):\n\n"
        + table(["search", "peak RSS growth MiB", "÷ file size"], mmap_rows))
    rr = speed["random_recall"]
    section.notes += [
        "Times: random unit vectors, medians of timed calls after a warm-up, methods taking turns; "
        f"recall: real embeddings ({recall['described']}).",
        "bytes / vector: what each method keeps in memory for the scan. Binary + rescoring also needs the float32 "
        "vectors, but only the shortlisted rows are read: they can stay on disk (`DiskIndex.search_binary`).",
        "int8 and float16 are scanned in NumPy by converting each block to float32 (NumPy has no int8 or float16 "
        "matrix product on CPUs); the conversion, not the memory read, sets their speed.",
        f"HNSW (M = {HNSW_M}, efConstruction 40) is approximate: its recall depends on efSearch and on the data; "
        "on these random vectors (no structure to exploit, the worst case) recall@10 was "
        + ", ".join(f"{rr[f'faiss hnsw ef={ef}']:.2f} at efSearch {ef}" for ef in EF_SEARCH)
        + f"; binary + rescoring of 4k {rr['binary + rescore 4k']:.2f}, default {rr['binary + rescore default']:.2f}; "
        f"int8 {rr['int8']:.3f}, FAISS SQ8 {rr['faiss sq8']:.3f}.",
        "A true neighbour's rank among the codes is roughly a fixed share of N, so a fixed shortlist loses recall "
        "as the corpus grows (the table above); the default (2,000 for k = 10) is cheap to rescore at any N, but "
        "large corpora should measure their own.",
        f"Our Hamming shortlist and IndexBinaryFlat's top {4 * K}: "
        + ("the same documents." if speed["hamming_same_set"] else "different documents at tied distances."),
        f"The index file was written by `save_index` in {speed['mmap']['save_s']:.1f} s. The plain memmap row: "
        "`rag_helpers.search` on `np.load(..., mmap_mode=\"r\")`, whose read pages stay resident; "
        "`DiskIndex.search` releases each block's pages (`madvise(MADV_DONTNEED)`) once it is scored.",
    ]
    if quick:
        section.notes.append(f"--quick: N = {fmt_n(n)} and a smaller real corpus; the targets are set at N = 1e6.")
    section.raw = {"recall": recall, "speed": speed}
    section.goals += _goals(recall, speed, s, floor)
    return section


def _goals(recall: dict, speed: dict, s: dict, floor: float) -> list[Goal]:
    n = fmt_n(speed["n"])
    r = recall["recall"]
    binary_ratio = max(s["binary + rescore 4k"], s["binary + rescore default"]) / floor
    hamming = s["hamming scan (4k shortlist)"] / s["faiss binary (k = 4k)"]
    int8_ratio = s["int8"] / floor
    mm = speed["mmap"]
    mm_ratio = max(mm["rss"]["one query"], mm["rss"][f"batch of {BATCH}"]) / mm["file_bytes"]
    worst = min(speed["batch"], key=lambda b: b["seconds"]["faiss_blas"] / b["seconds"]["search"])
    batch_ratio = worst["seconds"]["faiss_blas"] / worst["seconds"]["search"]
    return [
        Goal(f"binary + rescoring, N = {n}, one query, k = {K}: at most 0.25x the float32 floor",
             f"{fmt_ratio(s['binary + rescore 4k'] / floor)} (4k), {fmt_ratio(s['binary + rescore default'] / floor)} "
             f"(default shortlist {speed['m_default']})", binary_ratio <= 0.25),
        Goal("binary + rescoring of 4k: recall@10 at least 0.95 (real embeddings)",
             f"{r['binary 4k']:.3f} (sign bits), {r['binary centered 4k']:.3f} (centered)", r["binary 4k"] >= 0.95),
        Goal("binary + rescoring, default shortlist: recall@10 at least 0.99",
             f"{r['binary default']:.3f} (sign bits), {r['binary centered default']:.3f} (centered)",
             r["binary default"] >= 0.99),
        Goal("Hamming scan within 3x of FAISS IndexBinaryFlat",
             f"{fmt_ratio(hamming)} of IndexBinaryFlat's time (top {4 * K})", hamming <= 3.0),
        Goal(f"int8 at N = {n}: at most 0.6x the floor, recall@10 at least 0.99",
             f"{fmt_ratio(int8_ratio)} of the floor (FAISS SQ8: {fmt_ratio(s['faiss sq8'] / floor)}); "
             f"recall@10 {r['int8']:.3f}", int8_ratio <= 0.6 and r["int8"] >= 0.99),
        Goal(f"memory-mapped exact search at N = {n}: peak RSS growth under 0.25x the file, same results",
             f"{mm_ratio:.3f}x of the {mm['file_bytes'] / 2**20:,.0f} MiB file; results "
             f"{'identical' if mm['identical'] else 'DIFFERENT'}", mm_ratio < 0.25 and mm["identical"]),
        Goal(f"a batch of {BATCH} at N = {n}: no slower than IndexFlatIP with BLAS forced",
             f"worst k = {worst['k']}: IndexFlatIP BLAS-forced takes {fmt_ratio(batch_ratio)} as long",
             batch_ratio >= 1.0),
    ]


def plot(section: Section, path) -> None:
    """recall@10 (real embeddings) against milliseconds per query (N = 1e6 random), one point per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recall, speed = section.raw["recall"], section.raw["speed"]
    s = dict(speed["seconds"], mmap=speed["mmap"]["seconds"])
    fig, ax = plt.subplots(figsize=(8, 5))
    for label, time_key, recall_key, _ in _ROWS:
        if recall_key is None:
            continue
        ours = not label.startswith("FAISS")
        ax.scatter(s[time_key] * 1e3, recall["recall"][recall_key], marker="o" if ours else "s",
                   color="C0" if ours else "C1")
        ax.annotate(label.split(" (`")[0], (s[time_key] * 1e3, recall["recall"][recall_key]), fontsize=7,
                    xytext=(4, 2), textcoords="offset points")
    ax.axvline(s["floor"] * 1e3, color="k", linestyle="--", linewidth=1)
    ax.text(s["floor"] * 1e3, ax.get_ylim()[0], " float32 floor", fontsize=7, va="bottom")
    ax.set_xscale("log")
    ax.set_xlabel(f"ms per query, N = {fmt_n(speed['n'])} random vectors (log)")
    ax.set_ylabel("recall@10 on real embeddings")
    ax.set_title("Recall against time: ours (circles) and FAISS (squares)")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
