"""Ranking metrics and evaluate(): hand-computed cases, properties, and agreement with ranx."""
from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag_helpers.engine.evaluation import EvaluationResult, evaluate, evaluate_retriever
from rag_helpers.engine.metrics import hit_rate_at_k, judge, ndcg_at_k, recall_at_k, reciprocal_rank

# ------------------------------------------------------------ hand-computed cases
# One query, binary: documents 1, 4 and 8 are relevant; 8 is never retrieved.
RANKED = np.array([[3, 1, 7, 4, 9]])
RELEVANT = [{1, 4, 8}]


@pytest.mark.parametrize("k, hit, recall", [(1, 0, 0), (2, 1, 1 / 3), (3, 1, 1 / 3), (4, 1, 2 / 3), (5, 1, 2 / 3)])
def test_hit_rate_and_recall_by_hand(k, hit, recall):
    assert hit_rate_at_k(RANKED, RELEVANT, k).tolist() == [hit]
    np.testing.assert_allclose(recall_at_k(RANKED, RELEVANT, k), [recall], rtol=1e-15)


def test_reciprocal_rank_by_hand():
    # The first relevant document (1) is at rank 2.
    assert reciprocal_rank(RANKED, RELEVANT).tolist() == [0.5]
    assert reciprocal_rank(RANKED, RELEVANT, k=2).tolist() == [0.5]
    assert reciprocal_rank(RANKED, RELEVANT, k=1).tolist() == [0.0]  # not within the cut-off


def test_binary_ndcg_by_hand():
    # Relevant at ranks 2 and 4; the ideal puts the three relevant ones at ranks 1, 2, 3.
    dcg = 1 / np.log2(3) + 1 / np.log2(5)
    idcg = 1 + 1 / np.log2(3) + 1 / np.log2(4)
    np.testing.assert_allclose(ndcg_at_k(RANKED, RELEVANT, 5), [dcg / idcg], rtol=1e-15)
    # At k = 2 the ideal has two relevant documents in two places.
    np.testing.assert_allclose(ndcg_at_k(RANKED, RELEVANT, 2), [(1 / np.log2(3)) / (1 + 1 / np.log2(3))])


def test_graded_ndcg_by_hand_with_string_ids():
    ranked = [["b", "a", "c"]]
    grades = [{"a": 3, "b": 1, "d": 2, "c": 0}]
    dcg = 1 / 1 + 3 / np.log2(3) + 0 / 2
    idcg = 3 / 1 + 2 / np.log2(3) + 1 / 2
    np.testing.assert_allclose(ndcg_at_k(ranked, grades, 3), [dcg / idcg], rtol=1e-15)
    # A grade of 0 is "judged, not relevant": "c" is not counted in recall's denominator.
    np.testing.assert_allclose(recall_at_k(ranked, grades, 3), [2 / 3])


def test_several_queries_give_one_value_each():
    ranked = np.array([[0, 1, 2], [5, 4, 3], [7, 8, 9]])
    relevant = [{0}, {3}, {6}]
    assert hit_rate_at_k(ranked, relevant, 3).tolist() == [1, 1, 0]
    np.testing.assert_allclose(reciprocal_rank(ranked, relevant), [1, 1 / 3, 0])
    assert reciprocal_rank(ranked, relevant).mean() == pytest.approx((1 + 1 / 3) / 3)


def test_a_short_ranking_has_nothing_relevant_in_its_missing_places():
    ranked = [[2], [0, 1, 2]]  # the first retriever returned a single document
    relevant = [{2, 5}, {1}]
    np.testing.assert_allclose(recall_at_k(ranked, relevant, 3), [1 / 2, 1])
    np.testing.assert_allclose(ndcg_at_k(ranked, relevant, 3), [1 / (1 + 1 / np.log2(3)), 1 / np.log2(3)])


def test_rankings_and_judgements_in_other_containers():
    ranked = [np.array([4, 2, 9]), (1, 2, 3)]
    relevance = [[9], np.array([1, 3])]  # lists and arrays of ids count as sets
    np.testing.assert_allclose(recall_at_k(ranked, relevance, 3), [1, 1])
    np.testing.assert_allclose(reciprocal_rank(ranked, relevance), [1 / 3, 1])


# ------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "ranked, relevance, k, error, message",
    [
        (RANKED, RELEVANT, 0, ValueError, "k must be a positive integer"),
        (RANKED, RELEVANT, 2.0, (TypeError, ValueError), "k must be a positive integer"),
        (RANKED, RELEVANT, True, (TypeError, ValueError), "k must be a positive integer"),
        (RANKED, RELEVANT, 6, ValueError, "k=6 but the rankings hold at most 5 ids"),
        (RANKED, RELEVANT * 2, 1, ValueError, "ranked has 1 queries but relevance has 2"),
        (np.array([[3, 1, 3]]), RELEVANT, 1, ValueError, "ranked[0] lists document 3 twice (ranks 1 and 3)"),
        ([[1, 2], [5, 6, 5]], [{1}, {5}], 1, ValueError, "ranked[1] lists document 5 twice"),
        (RANKED.astype(np.float32), RELEVANT, 1, TypeError, "did you pass scores instead of indices?"),
        (RANKED[0], RELEVANT, 1, ValueError, "ranked[None, :]"),
        ([3, 1, 7], RELEVANT, 1, TypeError, "for one query, pass [ranking]"),
        (["doc"], [{"doc"}], 1, TypeError, "ranked[0] must be a list of document ids, got str"),
        ([], [], 1, ValueError, "ranked is empty"),
        ([[]], [{1}], 1, ValueError, "every ranking is empty"),
        (RANKED, [set()], 1, ValueError, "relevance[0] has no relevant document"),
        (RANKED, [{1: 0, 4: 0.0}], 1, ValueError, "relevance[0] has no relevant document"),
        (RANKED, [{1: -1}], 1, ValueError, "relevance[0][1] = -1: a grade must be a finite number >= 0"),
        (RANKED, [{1: float("nan")}], 1, ValueError, "relevance[0][1] = nan"),
        (RANKED, [{1: "high"}], 1, ValueError, "relevance[0][1] = 'high'"),
        (RANKED, [1], 1, TypeError, "relevance[0] must be a set of relevant ids or a dict"),
        (RANKED, {0: {1}}, 1, TypeError, "relevance must be a list"),
        (RANKED, [{"1", "4"}], 1, TypeError, "ranked holds int ids but relevance holds str ids"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(ranked, relevance, k, error, message):
    with pytest.raises(error, match=re.escape(message)):
        recall_at_k(ranked, relevance, k)


def test_reciprocal_rank_accepts_no_cutoff_but_refuses_a_bad_one():
    with pytest.raises(ValueError, match="k must be a positive integer"):
        reciprocal_rank(RANKED, RELEVANT, k=-1)


# ------------------------------------------------------------------ properties
@st.composite
def judged_rankings(draw, max_queries: int = 6, max_docs: int = 30, graded: bool = True):
    """(ranked (q, L) int array, relevance list of dicts) with at least one relevant document per query."""
    n_docs = draw(st.integers(2, max_docs))
    q = draw(st.integers(1, max_queries))
    depth = draw(st.integers(1, n_docs))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    ranked = np.stack([rng.permutation(n_docs)[:depth] for _ in range(q)])
    relevance = []
    for _ in range(q):
        n_judged = int(rng.integers(1, n_docs + 1))
        docs = rng.permutation(n_docs)[:n_judged]
        grades = rng.integers(0, 4 if graded else 2, size=n_judged)
        grades[0] = max(grades[0], 1)  # at least one relevant document
        relevance.append(dict(zip(docs.tolist(), grades.tolist())))
    return ranked, relevance


@given(judged_rankings())
def test_every_metric_lies_in_zero_one(data):
    ranked, relevance = data
    result = evaluate(ranked, relevance, ks=range(1, ranked.shape[1] + 1))
    for name, values in result.per_query.items():
        assert values.shape == (len(relevance),) and values.dtype == np.float64, name
        assert ((values >= 0) & (values <= 1 + 1e-12)).all(), name


@given(judged_rankings())
def test_hit_rate_recall_and_mrr_never_decrease_with_k(data):
    ranked, relevance = data
    judged = judge(ranked, relevance)
    for metric in (judged.hit_rate, judged.recall, judged.reciprocal_rank):
        by_k = np.stack([metric(k) for k in range(1, judged.depth + 1)])
        assert (np.diff(by_k, axis=0) >= 0).all()


@given(judged_rankings())
def test_metrics_agree_with_each_other(data):
    ranked, relevance = data
    judged = judge(ranked, relevance)
    for k in range(1, judged.depth + 1):
        hit = judged.hit_rate(k)
        np.testing.assert_array_equal(hit, judged.recall(k) > 0)
        np.testing.assert_array_equal(hit, judged.reciprocal_rank(k) >= 1 / k)
        np.testing.assert_array_equal(hit, judged.ndcg(k) > 0)
    # Without a cut-off, MRR looks at the whole ranking.
    np.testing.assert_array_equal(judged.reciprocal_rank(), judged.reciprocal_rank(judged.depth))


@given(judged_rankings())
def test_the_ideal_ranking_scores_one(data):
    _, relevance = data
    # Every query's graded documents, highest grade first (ties by id), then nothing else.
    ideal = [sorted((d for d, g in r.items() if g > 0), key=lambda d: (-r[d], d)) for r in relevance]
    judged = judge(ideal, relevance)
    n_relevant = judged.n_relevant
    for k in range(1, judged.depth + 1):
        np.testing.assert_allclose(judged.ndcg(k), 1.0, rtol=1e-12)
        np.testing.assert_allclose(judged.recall(k), np.minimum(k, n_relevant) / n_relevant, rtol=1e-15)
        assert (judged.reciprocal_rank(k) == 1).all()


@given(judged_rankings(), st.integers(2, 7))
def test_ndcg_ignores_the_scale_of_the_grades(data, factor):
    ranked, relevance = data
    scaled = [{d: g * factor for d, g in r.items()} for r in relevance]
    for k in range(1, ranked.shape[1] + 1):
        np.testing.assert_allclose(ndcg_at_k(ranked, scaled, k), ndcg_at_k(ranked, relevance, k), rtol=1e-12)


@given(judged_rankings(graded=False))
def test_binary_recall_counts_the_relevant_documents_found(data):
    ranked, relevance = data
    for k in range(1, ranked.shape[1] + 1):
        found = [sum(1 for d in row[:k] if r.get(d, 0) > 0) for row, r in zip(ranked.tolist(), relevance)]
        total = [sum(1 for g in r.values() if g > 0) for r in relevance]
        np.testing.assert_allclose(recall_at_k(ranked, relevance, k), np.array(found) / np.array(total))


# ---------------------------------------------------------------- evaluate()
def test_evaluate_gives_every_metric_at_every_k_with_means():
    ranked = np.array([[3, 1, 7, 4, 9], [0, 2, 4, 6, 8]])
    relevance = [{1, 4, 8}, {0: 2, 6: 1}]
    result = evaluate(ranked, relevance, ks=(5, 1, 3))
    assert result.ks == (1, 3, 5) and result.n_queries == 2 and result.seconds is None
    assert set(result.per_query) == {f"{m}@{k}" for m in ("hit_rate", "recall", "mrr", "ndcg") for k in (1, 3, 5)}
    for k in (1, 3, 5):
        np.testing.assert_array_equal(result.per_query[f"recall@{k}"], recall_at_k(ranked, relevance, k))
        np.testing.assert_array_equal(result.per_query[f"ndcg@{k}"], ndcg_at_k(ranked, relevance, k))
        np.testing.assert_array_equal(result.per_query[f"mrr@{k}"], reciprocal_rank(ranked, relevance, k))
        np.testing.assert_array_equal(result.per_query[f"hit_rate@{k}"], hit_rate_at_k(ranked, relevance, k))
    assert result["mrr@5"] == result.mean["mrr@5"] == pytest.approx((0.5 + 1) / 2)
    assert result["hit_rate@1"] == 0.5


def test_evaluate_table_lists_each_k_and_metric():
    result = evaluate(np.array([[3, 1, 7, 4, 9]]), [{1, 4, 8}], ks=(1, 5))
    table = result.table()
    lines = table.splitlines()
    assert lines[0] == "| k | hit rate | recall | MRR | nDCG |"
    assert lines[2] == "| 1 | 0.000 | 0.000 | 0.000 | 0.000 |"
    assert lines[3] == f"| 5 | 1.000 | 0.667 | 0.500 | {ndcg_at_k(RANKED, RELEVANT, 5)[0]:.3f} |"
    assert "1 queries" in table and str(result) == table == result._repr_markdown_()


@pytest.mark.parametrize(
    "ks, error, message",
    [((), ValueError, "ks is empty"), ((1, 0), ValueError, "each k in ks must be a positive integer"),
     ((1, 6), ValueError, "k=6 but the rankings hold at most 5 ids"), (5, TypeError, "ks must be a list")],
)
def test_evaluate_refuses_bad_cutoffs(ks, error, message):
    with pytest.raises(error, match=re.escape(message)):
        evaluate(RANKED, RELEVANT, ks)


def test_evaluate_unknown_metric_name_says_which_exist():
    with pytest.raises(KeyError, match="recall@1"):
        evaluate(RANKED, RELEVANT, ks=(1,))["recall@2"]


def test_evaluate_retriever_runs_once_with_the_largest_k_and_times_it():
    calls = []

    def retrieve_batch(queries, k):
        calls.append((list(queries), k))
        return np.array([[3, 1, 7, 4, 9][:k] for _ in queries])

    result = evaluate_retriever(retrieve_batch, ["a question"], RELEVANT, ks=(1, 5))
    assert calls == [(["a question"], 5)]
    assert isinstance(result, EvaluationResult) and result.seconds >= 0
    assert result.ms_per_query == pytest.approx(result.seconds * 1e3)
    assert result["recall@5"] == pytest.approx(2 / 3)
    assert "retrieval" in result.table()


def test_evaluate_retriever_refuses_a_tuple_and_a_wrong_count():
    with pytest.raises(TypeError, match="only the \\(q, k\\) ids"):
        evaluate_retriever(lambda qs, k: (RANKED, RANKED), ["q"], RELEVANT, ks=(1,))
    with pytest.raises(ValueError, match="returned 2 rankings for 1 queries"):
        evaluate_retriever(lambda qs, k: np.vstack([RANKED, RANKED]), ["q"], RELEVANT, ks=(1,))
    with pytest.raises(ValueError, match="2 queries but 1 relevance entries"):
        evaluate_retriever(lambda qs, k: RANKED, ["q", "r"], RELEVANT, ks=(1,))


def test_evaluate_with_the_real_encoder_on_the_planet_documents(encoder, sample_embeddings):
    import rag_helpers as rh

    questions = ["which planet is the biggest?", "Where is the Eiffel Tower?", "Who created Python?"]
    relevant = [{1}, {0}, {4}]

    def dense(queries, k):
        return rh.search(rh.embed(queries, encoder), sample_embeddings, k)[0]

    result = evaluate_retriever(dense, questions, relevant, ks=(1, 3))
    assert result["hit_rate@1"] == 1.0 and result["mrr@3"] == 1.0 and result["ndcg@3"] == 1.0


# ------------------------------------------------- agreement with ranx (reference)
def _ranx_per_query(ranked: list[list[str]], relevance: list[dict[str, int]], metrics: list[str]) -> dict:
    """ranx's per-query values; scores decrease along each ranking, so ranx keeps its order."""
    from ranx import Qrels, Run
    from ranx import evaluate as ranx_evaluate

    qids = [f"q{i:05d}" for i in range(len(ranked))]  # ranx sorts query ids as strings
    qrels = Qrels({qid: dict(r) for qid, r in zip(qids, relevance)})
    run = Run({qid: {d: float(len(row) - r) for r, d in enumerate(row)} for qid, row in zip(qids, ranked)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba's type-safety notes from inside ranx
        values = ranx_evaluate(qrels, run, metrics, return_mean=False, make_comparable=True)
    return {m: np.asarray(values[m]) for m in metrics}


def _as_str_ids(ranked: np.ndarray, relevance: list[dict]) -> tuple[list[list[str]], list[dict[str, int]]]:
    return ([[f"d{d}" for d in row] for row in ranked.tolist()],
            [{f"d{d}": int(g) for d, g in r.items()} for r in relevance])


@settings(max_examples=40)
@given(judged_rankings(max_queries=8, max_docs=40))
def test_every_metric_agrees_with_ranx(data):
    ranked, relevance = _as_str_ids(*data)
    depth = len(ranked[0])
    ks = sorted({1, 3, 5, 10, depth} & set(range(1, depth + 1)))
    metrics = [f"{m}@{k}" for m in ("hit_rate", "recall", "mrr", "ndcg") for k in ks] + ["mrr"]
    reference = _ranx_per_query(ranked, relevance, metrics)
    ours = evaluate(ranked, relevance, ks).per_query
    ours["mrr"] = reciprocal_rank(ranked, relevance)
    for name in metrics:
        np.testing.assert_allclose(ours[name], reference[name], rtol=0, atol=1e-9, err_msg=name)


def test_agrees_with_ranx_on_many_queries_of_mixed_lengths():
    rng = np.random.default_rng(11)
    ranked, relevance = [], []
    for _ in range(300):
        depth = int(rng.integers(1, 21))
        ranked.append([f"d{d}" for d in rng.permutation(60)[:depth]])
        judged = rng.permutation(60)[: rng.integers(1, 15)]
        grades = rng.integers(0, 5, size=judged.size)
        grades[0] = max(grades[0], 1)
        relevance.append({f"d{d}": int(g) for d, g in zip(judged, grades)})
    ks = (1, 5, 10, 20)
    metrics = [f"{m}@{k}" for m in ("hit_rate", "recall", "mrr", "ndcg") for k in ks]
    reference = _ranx_per_query(ranked, relevance, metrics)
    ours = evaluate(ranked, relevance, ks)
    for name in metrics:
        np.testing.assert_allclose(ours.per_query[name], reference[name], rtol=0, atol=1e-9, err_msg=name)
