"""The eval tests' data and helpers: a small hand-made BEIR folder, the eval command run in process."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

CORPUS = [
    {"_id": "paris", "title": "Paris", "text": "paris is the capital and largest city of france"},
    {"_id": "berlin", "title": "Berlin", "text": "berlin is the capital of germany"},
    {"_id": "rome", "title": "", "text": "rome is the capital of italy and was the centre of an empire"},
    {"_id": "flu", "title": "Influenza", "text": "rest, fluids and time treat a cold or the flu"},
    {"_id": "vaccine", "text": "a yearly vaccine protects against the flu"},
    {"_id": "rag", "title": "RAG", "text": "retrieval augmented generation combines search with a language model"},
    {"_id": "vector", "title": "", "text": "a vector database stores embeddings for nearest neighbour search"},
    {"_id": "market", "title": "Markets", "text": "the stock market fell on monday after the report"},
    {"_id": "bread", "title": "Bread", "text": "bread is made of flour, water, salt and yeast"},
    {"_id": "tea", "title": "Tea", "text": "green tea is brewed below the boil for a few minutes"},
]
QUERIES = [
    {"_id": "q1", "text": "what is the capital of france"},
    {"_id": "q2", "text": "how do i treat the flu"},
    {"_id": "q3", "text": "no judgments for this query"},
    {"_id": "q4", "text": "search with embeddings in a vector database"},
]
QRELS = [("q1", "paris", 2), ("q1", "rome", 0), ("q2", "flu", 2), ("q2", "vaccine", 1), ("q4", "vector", 1),
         ("q4", "rag", 1)]


def write_beir(folder: Path, corpus=CORPUS, queries=QUERIES, qrels=QRELS, header: bool = True) -> Path:
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in corpus), encoding="utf-8")
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries), encoding="utf-8")
    rows = ["query-id\tcorpus-id\tscore"] if header else []
    rows += [f"{q}\t{d}\t{s}" for q, d, s in qrels]
    (folder / "qrels" / "test.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder


def run_eval(*args: str, env: dict[str, str] | None = None) -> Result:
    from crossrank.pipeline.evaluation.cli import eval_

    return CliRunner().invoke(eval_, list(args), env=env, catch_exceptions=False)
