"""An evaluation report for people (a table), for scripts (JSON), and on disk (--out DIR).

--out writes report.json, per_query.csv and ndcg.png into a fresh folder beside DIR and moves
them in only once all three exist, so a failed run leaves nothing half written.
"""

from __future__ import annotations

import csv
import json
import shutil
import tempfile
from pathlib import Path

from rich.table import Table

from crossrank.pipeline.evaluation.metrics import LABELS, METRICS

FILES = ("report.json", "per_query.csv", "ndcg.png")


def table(report: dict) -> Table:
    worker = report["worker"]
    data = report["data"]
    title = (f"{data['name']}: {data['queries']} judged queries, {data['documents']} documents\n"
             f"reranker {worker['model']}, bi-encoder {worker['embed_model']}")
    out = Table(title=title, title_justify="left")
    out.add_column("stage")
    out.add_column("k", justify="right")
    for metric in METRICS:
        out.add_column(LABELS[metric], justify="right")
    for row in report["rows"]:
        out.add_row(row["stage"], str(row["initial_k"]), *(f"{row['metrics'][m]:.4f}" for m in METRICS))
    return out


def _csv(report: dict, path: Path) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["stage", "initial_k", "query_id", *METRICS])
        for row in report["rows"]:
            for query_id, values in row["per_query"].items():
                writer.writerow([row["stage"], row["initial_k"], query_id, *(f"{values[m]:.6f}" for m in METRICS)])


def _plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    stages = list(dict.fromkeys(row["stage"] for row in report["rows"]))
    depths = sorted({row["initial_k"] for row in report["rows"]})
    values = [row["metrics"]["ndcg@10"] for row in report["rows"]]
    # One colour per first stage: solid alone, dashed reranked.
    colours = {base: f"C{i}" for i, base in enumerate(dict.fromkeys(s.split("+")[0] for s in stages))}
    if len(depths) > 1:
        for stage in stages:
            points = sorted((r["initial_k"], r["metrics"]["ndcg@10"]) for r in report["rows"] if r["stage"] == stage)
            ax.plot(*zip(*points, strict=True), marker="o", linestyle="--" if "+rerank" in stage else "-",
                    color=colours[stage.split("+")[0]], label=stage)
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(depths, [str(d) for d in depths])
        ax.set_xlabel("initial_k (first-stage candidates)")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the plot, over no line
    else:
        bars = ax.bar(stages, values, color=[colours[s.split("+")[0]] for s in stages],
                      hatch=["//" if "+rerank" in s else "" for s in stages])
        ax.bar_label(bars, fmt="%.3f", fontsize=8)
        ax.set_xlabel(f"stage (initial_k = {depths[0]})")
        ax.tick_params(axis="x", labelsize=8)
    ax.set_ylabel("NDCG@10")
    # Bars start at 0; lines zoom in on where they are.
    ax.set_ylim(max(0.0, min(values) - 0.1) if len(depths) > 1 else 0.0, min(1.0, max(values) + 0.1))
    ax.set_title(f"{report['data']['name']}: reranker {Path(report['worker']['model']).name}", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_out(report: dict, folder: Path) -> list[Path]:
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        (staging / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
        _csv(report, staging / "per_query.csv")
        _plot(report, staging / "ndcg.png")
        folder.mkdir(exist_ok=True)
        for name in FILES:
            (staging / name).replace(folder / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [folder / name for name in FILES]
