"""Two reports side by side: per stage and metric, B - A and the p-value of ranx's paired t-test."""

from __future__ import annotations

import json
from pathlib import Path

from rich.table import Table

from crossrank.pipeline.evaluation.metrics import LABELS, METRICS

MAX_P = 0.05


def load_report(path: Path) -> dict:
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not a report (invalid JSON at line {exc.lineno})") from None
    if not isinstance(report, dict) or "rows" not in report or "data" not in report:
        raise ValueError(f"{path}: not a crossrank eval report (write one with crossrank eval DATA --out DIR)")
    return report


def compare(a: dict, b: dict) -> list[dict]:
    """One entry per (stage, initial_k, metric) the two reports share, over the queries both judged."""
    from ranx.statistical_tests import paired_student_t_test

    if a["data"]["corpus_sha256"] != b["data"]["corpus_sha256"]:
        raise ValueError(f"the reports are of different corpora ({a['data']['name']} and {b['data']['name']}): "
                         "compare runs over the same data")
    rows_b = {(r["stage"], r["initial_k"]): r for r in b["rows"]}
    out = []
    for row_a in a["rows"]:
        row_b = rows_b.get((row_a["stage"], row_a["initial_k"]))
        if row_b is None:
            continue
        queries = [q for q in row_a["per_query"] if q in row_b["per_query"]]
        for metric in METRICS:
            xs = [row_a["per_query"][q][metric] for q in queries]
            ys = [row_b["per_query"][q][metric] for q in queries]
            p_value = 1.0 if xs == ys else float(paired_student_t_test(xs, ys, MAX_P)[0])
            out.append({"stage": row_a["stage"], "initial_k": row_a["initial_k"], "metric": metric,
                        "a": sum(xs) / len(xs), "b": sum(ys) / len(ys), "diff": (sum(ys) - sum(xs)) / len(xs),
                        "p_value": p_value, "significant": p_value <= MAX_P, "queries": len(queries)})
    if not out:
        raise ValueError("the reports share no stage and initial_k: run both with the same --first-stage and depths")
    return out


def table(entries: list[dict], a_name: str, b_name: str) -> Table:
    out = Table(title=f"A = {a_name}\nB = {b_name}\npaired t-test (ranx), * p <= {MAX_P}", title_justify="left")
    for name, justify in (("stage", "left"), ("k", "right"), ("metric", "left"), ("A", "right"), ("B", "right"),
                          ("B - A", "right"), ("p", "right")):
        out.add_column(name, justify=justify)
    for e in entries:
        out.add_row(e["stage"], str(e["initial_k"]), LABELS[e["metric"]], f"{e['a']:.4f}", f"{e['b']:.4f}",
                    f"{e['diff']:+.4f}", f"{e['p_value']:.3f}" + ("*" if e["significant"] else ""))
    return out
