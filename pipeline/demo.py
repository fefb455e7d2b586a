"""`crossrank demo`: the whole flow on one machine, on a small Chinese and English corpus.

1. rerank the original write-up's example (什么是RAG技术？ and five candidates) on the worker;
2. index sample_data/corpus.jsonl through a Celery index job (Embed, then Chroma);
3. run an offline rerank job for sample_data/queries.jsonl and print its ranked results.
"""

from __future__ import annotations

import os
from importlib.resources import files

import click

from crossrank.client import CrossrankClient
from crossrank.pipeline import api
from crossrank.pipeline.render import console, follow, ranked_table
from crossrank.pipeline.settings import PipelineSettings
from crossrank.pipeline.stack import LocalStack

COLLECTION = "crossrank-demo"
QUERY = "什么是RAG技术？"
CANDIDATES = [
    "RAG（检索增强生成）是一种结合信息检索和文本生成的技术，先检索相关文档，再交给大模型生成回答。",
    "向量数据库用于存储和检索高维向量。",
    "北京是中国的首都。",
    "大语言模型可以根据上下文生成流畅的文本。",
    "今天天气很好，适合出去散步。",
]


def _sample(name: str) -> str:
    return str(files("crossrank.pipeline") / "sample_data" / name)


def _run_job(kind: str, job_id: str, settings: PipelineSettings) -> None:
    click.echo(f"\n{kind} job {job_id}")
    job = follow(job_id, settings, timeout=600)
    if job.state != "done":
        raise click.ClickException(f"{kind} job {job_id} ended {job.state}: {job.errors[:3]}")


def run_demo(stack: LocalStack, top_k: int = 3) -> None:
    settings = PipelineSettings.from_env({**os.environ, **stack.env})
    with CrossrankClient(stack.worker_target) as client:
        info = client.info()
        click.echo(f"worker {stack.worker_target}: {info.model} on {info.device} ({info.dtype}); "
                   f"embeddings: {info.embed_model}\n")
        response = client.rerank(QUERY, CANDIDATES, return_documents=True)
        console.print(ranked_table(f"1. rerank on the worker: {QUERY}",
                                   [(rank, r.index + 1, r.score, "", r.document)
                                    for rank, r in enumerate(response.results, 1)]))

    _run_job("2. index", api.submit_index(_sample("corpus.jsonl"), COLLECTION, settings=settings), settings)
    job_id = api.submit_rerank(_sample("queries.jsonl"), COLLECTION, initial_k=10, top_k=top_k, settings=settings)
    _run_job("3. rerank", job_id, settings)
    for query_id, records in api.summarize(api.results(job_id, settings=settings)).items():
        console.print(ranked_table(f"{query_id}: {records[0].query}",
                                   [(r.rank, r.initial_rank, r.score, r.doc_id, r.text) for r in records]))
    click.echo("\nThe demo stack stops now and removes its data. `crossrank up` keeps a stack running for "
               "`crossrank index`, `crossrank jobs` and `crossrank search`.")
