# Generated from notebooks/10_scaling.ipynb by tools/nbexport.py: edit the notebook, not this file.
# Each block below is one `#| export` cell of the notebook, verbatim, in order.

"""Scaling (notebook 10): fewer bytes per vector, and searches that read them.

float16 (2 bytes a number), int8 with a scale per dimension (1 byte), binary
codes (1 bit: the sign) searched by Hamming distance and rescored with the
float32 vectors, and vectors saved to disk and searched from a memory map.
``rh.binary_codes`` and ``rh.search_binary`` (``engine/quantization.py``) add
the checks and a blocked Hamming scan; their tests prove they give these
functions' results.
"""
import numpy as np


def to_float16(doc_vecs: np.ndarray) -> np.ndarray:
    """(n, d) float32 -> (n, d) float16: half the bytes; each value keeps 11 significant bits."""
    return doc_vecs.astype(np.float16)


def float16_scores(query: np.ndarray, docs16: np.ndarray) -> np.ndarray:
    """(d,) float32 query, (n, d) float16 documents -> (n,) float32 scores.

    NumPy has no fast float16 arithmetic on CPUs: the rows are converted to float32 first.
    """
    return docs16.astype(np.float32) @ query


def quantize_int8(doc_vecs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, d) float32 -> (codes (n, d) int8 in [-127, 127], scale (d,) float32): doc_vecs ≈ codes * scale.

    Each dimension's largest |value| maps to 127; rounding to the nearest code is off by half a scale at most.
    """
    scale = np.abs(doc_vecs).max(axis=0) / 127                            # (d,) one scale per dimension
    codes = np.clip(np.rint(doc_vecs / scale), -127, 127).astype(np.int8)  # clip: float rounding at ±127
    return codes, scale


def int8_scores(query: np.ndarray, codes: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(d,) float32 query -> (n,) float32 scores of the int8 documents: codes @ (query * scale)."""
    return codes.astype(np.float32) @ (query * scale)   # the scale moves to the query: d multiplications, not n * d


def binary_codes(vecs: np.ndarray) -> np.ndarray:
    """(n, d) or (d,) float -> (n, ceil(d / 8)) or (ceil(d / 8),) uint8: one sign bit per value, 1 where > 0."""
    return np.packbits(vecs > 0, axis=-1)   # eight bits to a byte, the first value in the highest bit


def hamming_distances(query_code: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """(nbytes,) uint8 query code, (n, nbytes) uint8 codes -> (n,) how many bits differ."""
    return np.bitwise_count(codes ^ query_code).sum(axis=1)   # XOR: 1 where they differ; count (NumPy >= 2.0)


def search_binary(query: np.ndarray, codes: np.ndarray, doc_vecs: np.ndarray, k: int,
                  m: int) -> tuple[np.ndarray, np.ndarray]:
    """Hamming shortlist of m codes, then exact rescoring: ((k,) int64 indices, (k,) float32 scores), best first.

    query : (d,) float32 unit vector; codes : binary_codes(doc_vecs); doc_vecs : (n, d) float32 unit
    rows, an array or a memory map (only the m shortlisted rows are read). Ties go to the lower index.
    """
    distance = hamming_distances(binary_codes(query), codes)            # (n,) 0 to d
    shortlist = np.sort(np.argsort(distance, kind="stable")[:m])       # (m,) nearest codes, in index order
    scores = doc_vecs[shortlist] @ query                               # (m,) exact cosines of these rows only
    best = np.argsort(-scores, kind="stable")[:k]                      # (k,) equal scores: the lower index
    return shortlist[best], scores[best]


def save_vectors(path, vecs: np.ndarray) -> None:
    """Write (n, d) vectors to a .npy file: a small header (dtype, shape), then the raw numbers."""
    np.save(path, vecs)


def open_vectors(path) -> np.ndarray:
    """The vectors of save_vectors as a read-only memory map: pages are read from the file when touched.

    allow_pickle=False: the file can hold only numbers, never code to run.
    """
    return np.load(path, mmap_mode="r", allow_pickle=False)
