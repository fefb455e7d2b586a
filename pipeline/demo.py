"""`crossrank demo`: the whole flow on one machine, on a small Chinese and English corpus.

1. rerank one example query (什么是RAG技术？, "what is RAG?") and five candidates on the worker;
2. index sample_data/corpus.jsonl through a Celery index job (Embed, then Chroma);
3. run an offline rerank job for sample_data/queries.jsonl and print its ranked results.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from importlib.resources import files
from urllib.parse import urlparse

import click

from crossrank.client import CrossrankClient
from crossrank.pipeline import api
from crossrank.pipeline.render import console, follow, ranked_table
from crossrank.pipeline.settings import PipelineSettings
from crossrank.pipeline.stack import LocalStack, free_port, redis_answers

COLLECTION = "crossrank-demo"
QUERY = "什么是RAG技术？"
CANDIDATES = [
    "RAG（检索增强生成）是一种结合信息检索和文本生成的技术，先检索相关文档，再交给大模型生成回答。",
    "向量数据库用于存储和检索高维向量。",
    "北京是中国的首都。",
    "大语言模型可以根据上下文生成流畅的文本。",
    "今天天气很好，适合出去散步。",
]


@contextlib.contextmanager
def demo_redis(found_url: str) -> Iterator[str]:
    """A Redis of the demo's own, so that it neither mixes with nor leaves anything in a Redis in use: a
    private redis-server (the stack starts it, nothing answering at a free port, and removes it); without
    redis-server, an empty database of the Redis at `found_url`, emptied again at the end."""
    if shutil.which("redis-server"):
        click.echo("the demo starts a Redis of its own and removes it at the end", err=True)
        yield f"redis://127.0.0.1:{free_port()}/0"
        return
    if not redis_answers(found_url):
        yield found_url  # the stack then says what to start, naming this address
        return
    import redis

    for db in range(1, 16):
        url = urlparse(found_url)._replace(path=f"/{db}").geturl()
        with redis.Redis.from_url(url) as client:
            if client.dbsize() == 0:
                break
    else:
        raise click.ClickException(f"the demo needs an empty database at {found_url} (1-15), or redis-server")
    click.echo(f"the demo uses the empty database {db} of the Redis at {found_url}, and empties it at the end",
               err=True)
    try:
        yield url
    finally:
        with redis.Redis.from_url(url) as client:
            client.flushdb()


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
        # One fact a line: model paths are long, and the output fits 80 columns.
        click.echo(f"worker {stack.worker_target}: {info.model}\n  on {info.device} ({info.dtype}); "
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
    click.echo("\nThe demo stack stops now and removes its data. `crossrank up` keeps a stack\n"
               "running for `crossrank index`, `crossrank jobs` and `crossrank search`.")
