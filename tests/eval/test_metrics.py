"""The metrics on a case worked out by hand, fusion, reranking, and comparing two reports."""

from __future__ import annotations

import math

import pytest
from support.evaluation import run_eval

from crossrank.pipeline.evaluation.compare import compare
from crossrank.pipeline.evaluation.first_stage import reciprocal_rank_fusion
from crossrank.pipeline.evaluation.metrics import evaluate, mean
from crossrank.pipeline.evaluation.rerank import rerank


def test_metrics_equal_a_case_worked_by_hand():
    qrels = {"a": {"d1": 2, "d2": 0, "d4": 1}, "b": {"d3": 1}}
    rankings = {"a": ["d2", "d1", "d5", "d4"], "b": ["d9", "d8", "d7", "d3"]}
    per_query = evaluate(qrels, rankings, 3)  # cut at initial_k = 3: d4 and d3 fall out
    # a: gains 2^g - 1 = 0, 3, 0 at ranks 1-3; ideal 3 (d1), 1 (d4).
    ndcg_a = (3 / math.log2(3)) / (3 / math.log2(2) + 1 / math.log2(3))
    assert per_query["a"]["ndcg@10"] == pytest.approx(ndcg_a, abs=1e-12)
    assert per_query["a"]["mrr@10"] == 0.5
    assert per_query["a"]["recall@k"] == 0.5  # d1 of {d1, d4}; d2 has grade 0
    assert per_query["a"]["map"] == pytest.approx((1 / 2) / 2)
    assert per_query["b"] == {"ndcg@10": 0.0, "mrr@10": 0.0, "recall@k": 0.0, "map": 0.0}
    assert mean(per_query)["ndcg@10"] == pytest.approx(ndcg_a / 2)
    assert evaluate(qrels, rankings, 4)["b"]["mrr@10"] == 0.25


def test_a_query_with_nothing_found_scores_zero():
    assert evaluate({"a": {"d1": 1}}, {"a": []}, 10)["a"] == {"ndcg@10": 0.0, "mrr@10": 0.0, "recall@k": 0.0,
                                                              "map": 0.0}


def test_reciprocal_rank_fusion_by_hand():
    # x: 1/61 + 1/62; y: 1/62 + 1/61 (a tie, first seen wins); z: 1/63; w: 1/63.
    assert reciprocal_rank_fusion([["x", "y", "z"], ["y", "x", "w"]], 3) == ["x", "y", "z"]
    assert reciprocal_rank_fusion([["x", "y"], ["y", "z"]], 3, rrf_k=1) == ["y", "x", "z"]


def test_reranking_sorts_by_score_and_keeps_first_stage_order_on_ties():
    assert rerank(["a", "b", "c", "d"], {"a": 0.1, "b": 0.9, "c": 0.5, "d": 0.5}) == ["b", "c", "d", "a"]


def _report(sha: str, per_query: dict[str, float]) -> dict:
    metrics = {"mrr@10": 0.0, "recall@k": 0.0, "map": 0.0}
    return {"data": {"name": "x", "corpus_sha256": sha},
            "rows": [{"stage": "dense", "initial_k": 10, "metrics": {},
                      "per_query": {q: {"ndcg@10": v, **metrics} for q, v in per_query.items()}}]}


def test_compare_gives_the_difference_and_ranx_paired_test():
    from scipy.stats import ttest_rel

    a = _report("s", {"q1": 0.2, "q2": 0.4, "q3": 0.5, "q4": 0.1})
    b = _report("s", {"q1": 0.3, "q2": 0.6, "q3": 0.5, "q4": 0.4})
    ndcg = next(e for e in compare(a, b) if e["metric"] == "ndcg@10")
    assert ndcg["diff"] == pytest.approx(0.15)
    assert ndcg["p_value"] == pytest.approx(ttest_rel([0.2, 0.4, 0.5, 0.1], [0.3, 0.6, 0.5, 0.4]).pvalue)
    same = next(e for e in compare(a, a) if e["metric"] == "map")
    assert same["diff"] == 0 and same["p_value"] == 1.0 and not same["significant"]


def test_compare_refuses_reports_of_different_corpora(tmp_path):
    import json

    (tmp_path / "a.json").write_text(json.dumps(_report("s", {"q1": 0.2})))
    (tmp_path / "b.json").write_text(json.dumps(_report("t", {"q1": 0.2})))
    (tmp_path / "c.json").write_text("{not json")
    result = run_eval("compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"))
    assert result.exit_code == 1 and "different corpora" in result.output
    result = run_eval("compare", str(tmp_path / "a.json"), str(tmp_path / "c.json"))
    assert result.exit_code == 1 and "c.json: not a report (invalid JSON at line 1)" in result.output
