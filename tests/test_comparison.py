"""Dense, BM25 and hybrid retrieval side by side: each method is the building block it names.

``QueryScores.rank`` must give exactly what ``top_k_rows``, ``reciprocal_rank_fusion`` and
``weighted_fusion`` give on the same scores; ``ChunkRetrievers`` must score like the encoder and
``BM25Index`` it holds; the weight rule must pick what it says.
"""
from __future__ import annotations

import numpy as np
import pytest

import rag_helpers as rh
from rag_helpers.engine.bm25 import BM25Index
from rag_helpers.engine.comparison import (
    FUSION_WEIGHTS,
    METHODS,
    ChunkRetrievers,
    QueryScores,
    choose_weight,
    compare,
    comparison_table,
    sweep_weights,
)
from rag_helpers.engine.corpus import LabelledQuestion
from rag_helpers.engine.documents import Document
from rag_helpers.engine.evaluation import evaluate
from rag_helpers.engine.hybrid import reciprocal_rank_fusion, weighted_fusion
from rag_helpers.engine.topk import top_k_rows


@pytest.fixture(scope="module")
def random_scores() -> QueryScores:
    rng = np.random.default_rng(0)
    dense = rng.uniform(-0.2, 0.9, (6, 40)).astype(np.float32)
    bm25 = np.where(rng.random((6, 40)) < 0.3, rng.uniform(0, 12, (6, 40)), 0).astype(np.float32)
    return QueryScores(dense, bm25)


def test_each_method_is_its_building_block(random_scores):
    s = random_scores
    np.testing.assert_array_equal(s.rank("dense", 5), top_k_rows(s.dense, 5)[0])
    np.testing.assert_array_equal(s.rank("bm25", 5), top_k_rows(s.bm25, 5)[0])
    expected_rrf = reciprocal_rank_fusion(top_k_rows(s.dense, 20)[0], top_k_rows(s.bm25, 20)[0], k=5)[0]
    np.testing.assert_array_equal(s.rank("hybrid RRF", 5, depth=20), expected_rrf)
    np.testing.assert_array_equal(s.rank("hybrid weighted", 5, weight=0.3),
                                  weighted_fusion(s.dense, s.bm25, 5, weight=0.3)[0])
    # The weight's two ends are the two retrievers alone.
    np.testing.assert_array_equal(s.rank("hybrid weighted", 5, weight=1.0), s.rank("dense", 5))
    np.testing.assert_array_equal(s.rank("hybrid weighted", 5, weight=0.0)[:, :1], s.rank("bm25", 5)[:, :1])


def test_rrf_depth_is_at_least_k_and_at_most_n(random_scores):
    s = random_scores
    assert s.rank("hybrid RRF", 10, depth=3).shape == (6, 10)  # depth raised to k
    np.testing.assert_array_equal(s.rank("hybrid RRF", 5, depth=1000), s.rank("hybrid RRF", 5, depth=40))  # cut to n
    with pytest.raises(ValueError):
        s.rank("hybrid RRF", 5, depth=0)


def test_bad_method_and_k_are_refused(random_scores):
    with pytest.raises(ValueError, match="method must be one of"):
        random_scores.rank("sparse", 3)
    with pytest.raises(ValueError):
        random_scores.rank("dense", 41)


def test_compare_and_the_table(random_scores):
    relevance = [{0, 1}, {2}, {3, 4, 5}, {6}, {7}, {8, 9}]
    results = compare(random_scores, relevance, ks=(1, 5))
    assert list(results) == list(METHODS)
    for method, result in results.items():
        expected = evaluate(random_scores.rank(method, 5), relevance, ks=(1, 5))
        assert result.mean == expected.mean
    table = comparison_table(results, columns=("recall@5", "mrr@5"))
    assert table.count("\n") == 1 + len(METHODS) and table.count("**") >= 4  # a bold best in each column
    best = max(results, key=lambda m: results[m]["recall@5"])
    assert f"**{results[best]['recall@5']:.3f}**" in table


def test_choose_weight_takes_recall_at_5_then_mrr_then_the_lowest_weight(random_scores):
    relevance = [{0, 1}, {2}, {3, 4, 5}, {6}, {7}, {8, 9}]
    by_weight = sweep_weights(random_scores, relevance, ks=(5, 10))
    assert tuple(by_weight) == FUSION_WEIGHTS
    chosen = choose_weight(by_weight)
    key = (by_weight[chosen]["recall@5"], by_weight[chosen]["mrr@10"])
    assert all(key >= (r["recall@5"], r["mrr@10"]) for r in by_weight.values())
    # A tie everywhere goes to the lowest weight.
    same = evaluate(np.array([[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]]), [{0}], ks=(5, 10))
    assert choose_weight({0.7: same, 0.2: same, 0.9: same}) == 0.2


@pytest.fixture(scope="module")
def small_retrievers(encoder) -> ChunkRetrievers:
    pages = [
        Document("Jupiter is the largest planet in our solar system.\n\nIt has dozens of moons.", "planets.txt"),
        Document("The Pacific is the largest ocean.\n\nMount Everest is the tallest mountain.", "earth.txt"),
    ]
    return ChunkRetrievers.build(pages, encoder, chunk_tokens=12, overlap=2, cache_embeddings=False)


def test_retrievers_score_like_the_encoder_and_bm25(small_retrievers, encoder):
    r = small_retrievers
    texts = [c.text for c in r.chunks]
    assert len(r.chunks) >= 3 and r.doc_embeddings.shape == (len(texts), 384)
    questions = ["which planet is the biggest?", "what is the tallest mountain?"]
    scores = r.score(questions)
    assert scores.dense.shape == scores.bm25.shape == (2, len(texts))
    np.testing.assert_allclose(scores.dense, rh.embed(questions, encoder) @ rh.embed(texts, encoder).T, atol=1e-5)
    np.testing.assert_array_equal(scores.bm25, BM25Index().fit(texts).scores(questions))
    assert "Jupiter" in texts[scores.rank("dense", 1)[0, 0]]
    assert "Everest" in texts[scores.rank("hybrid weighted", 1)[1, 0]]


def test_relevance_is_the_overlap_with_the_answer(small_retrievers):
    r = small_retrievers
    jupiter = next(c for c in r.chunks if "Jupiter" in c.text)
    start, end = jupiter.start, jupiter.start + 7  # the answer: "Jupiter"
    question = LabelledQuestion("q", "which planet is the biggest?", "planets.txt", start, end, "dev")
    [relevant] = r.relevance([question])
    overlapping = {i for i, c in enumerate(r.chunks)
                   if c.source == "planets.txt" and max(c.start, start) < min(c.end, end)}
    assert r.chunks.index(jupiter) in relevant and relevant == overlapping
    elsewhere = LabelledQuestion("q2", "?", "other.txt", 0, 5, "dev")
    with pytest.raises(ValueError, match=r"questions\[1\] has no chunk overlapping its answer"):
        r.relevance([question, elsewhere])
