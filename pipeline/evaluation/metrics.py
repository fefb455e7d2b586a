"""Ranking metrics, all computed by ranx.

NDCG uses the exponential gain 2^grade - 1 (ranx's `ndcg_burges`), the convention of the figures in
data/SOURCES.md; MRR, Recall and MAP count a document as relevant when its grade is 1 or more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

METRICS = ("ndcg@10", "mrr@10", "recall@k", "map")
_RANX = {"ndcg@10": "ndcg_burges@10", "mrr@10": "mrr@10", "map": "map"}
LABELS = {"ndcg@10": "NDCG@10", "mrr@10": "MRR@10", "recall@k": "R@k", "map": "MAP"}


def evaluate(qrels: Mapping[str, Mapping[str, int]], rankings: Mapping[str, Sequence[str]], k: int
             ) -> dict[str, dict[str, float]]:
    """Per query and metric: {query id: {metric: value}}, for rankings (doc ids, best first) cut at `k`."""
    from ranx import Qrels, Run
    from ranx import evaluate as ranx_evaluate

    names = {**_RANX, "recall@k": f"recall@{k}"}
    # ranx orders a run by score: give each document its rank as a score so it keeps our order exactly.
    run = Run({q: {d: float(k - rank) for rank, d in enumerate(rankings[q][:k])} or {"": 0.0} for q in qrels})
    ranx_evaluate(Qrels({q: dict(judged) for q, judged in qrels.items()}), run, list(names.values()))
    return {q: {metric: float(run.scores[names[metric]][q]) for metric in METRICS} for q in qrels}


def mean(per_query: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    values = list(per_query.values())
    return {metric: sum(v[metric] for v in values) / len(values) for metric in METRICS}
