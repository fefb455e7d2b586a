"""The two Celery tasks: index a chunk of documents, rerank a chunk of queries.

Each chunk is idempotent: records have deterministic ids and are written with upsert, and the job
counts a chunk once (see jobs.py), so a redelivered chunk changes nothing. A failing chunk is retried
with exponential backoff up to `task_retries` times, then recorded in its job's errors; inputs that
can never succeed (a missing collection) are recorded at once.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

from celery import Task
from celery.signals import worker_process_shutdown
from chromadb.api import ClientAPI

from crossrank.client import AuthenticationError, CrossrankClient, InvalidRequestError, NotServedError, backoff
from crossrank.pipeline.celery_app import INDEX_TASK, RERANK_TASK, app
from crossrank.pipeline.documents import Document
from crossrank.pipeline.jobs import FINISHED, JobStore
from crossrank.pipeline.passages import split_passages
from crossrank.pipeline.search import SearchResult, TwoStageRetriever
from crossrank.pipeline.settings import PipelineSettings
from crossrank.pipeline.store import CollectionNotFound, open_chroma, open_collection, upsert

log = logging.getLogger("crossrank.pipeline")

# Retrying these cannot help: record the chunk as failed at once.
PERMANENT_ERRORS = (CollectionNotFound, AuthenticationError, InvalidRequestError, NotServedError, ValueError,
                    TypeError, KeyError)


@dataclass
class Resources:
    """What a pool process keeps between tasks; created on first use, after the fork."""

    settings: PipelineSettings
    jobs: JobStore
    client: CrossrankClient
    chroma: ClientAPI


@functools.cache
def resources() -> Resources:
    settings: PipelineSettings = app.settings
    return Resources(settings, JobStore.from_url(settings.redis_url, settings.key_prefix),
                     CrossrankClient(**settings.client_kwargs()), open_chroma(settings))


@worker_process_shutdown.connect
def _close(**_) -> None:
    if resources.cache_info().currsize:
        resources().client.close()


def _skip(jobs: JobStore, job_id: str, chunk: int) -> bool:
    state = jobs.state(job_id)
    if state is None or state in FINISHED:
        log.info("job %s chunk %d skipped: job is %s", job_id, chunk, state or "gone",
                 extra={"job_id": job_id, "chunk": chunk})
        return True
    jobs.start(job_id)
    return False


def _give_up_or_retry(task: Task, jobs: JobStore, job_id: str, chunk: int, items: int, kind: str,
                      exc: Exception) -> None:
    if not isinstance(exc, PERMANENT_ERRORS) and task.request.retries < task.max_retries:
        jobs.note_retry(kind)
        countdown = backoff(task.request.retries, initial=1.0, maximum=60.0)
        log.warning("job %s chunk %d failed (%s: %s); retry %d of %d in %.1fs", job_id, chunk,
                    type(exc).__name__, exc, task.request.retries + 1, task.max_retries, countdown,
                    extra={"job_id": job_id, "chunk": chunk})
        raise task.retry(exc=exc, countdown=countdown)
    log.error("job %s chunk %d failed for good: %s: %s", job_id, chunk, type(exc).__name__, exc,
              extra={"job_id": job_id, "chunk": chunk})
    if jobs.complete_chunk(job_id, chunk, items, {"failed": items}, failed=True, kind=kind):
        jobs.add_error(job_id, {"chunk": chunk, "message": f"{type(exc).__name__}: {exc}",
                                "retries": task.request.retries})


def index_documents(r: Resources, collection_name: str, documents: list[Document], passage_chars: int,
                    passage_overlap: int) -> dict[str, int]:
    passages = [(d, p) for d in documents for p in split_passages(d.id, d.text, passage_chars, passage_overlap)]
    texts = [p.text for _, p in passages]
    embeddings: list[list[float]] = []
    step = r.settings.embed_batch_size
    for start in range(0, len(texts), step):
        embeddings += r.client.embed(texts[start:start + step]).embeddings
    metadatas = [{**d.metadata, "doc_id": d.id, "passage": p.number} for d, p in passages]
    collection = open_collection(r.chroma, collection_name, create=True)
    ids = [p.id for _, p in passages]
    upsert(collection, r.chroma, ids, embeddings, texts, metadatas)
    # A document indexed again with fewer passages: its old tail would still be found by search.
    earlier = collection.get(where={"doc_id": {"$in": [d.id for d in documents]}}, include=[])["ids"]
    stale = sorted(set(earlier) - set(ids))
    if stale:
        collection.delete(ids=stale)
    return {"indexed": len(documents), "passages": len(passages)}


@app.task(name=INDEX_TASK, bind=True)
def index_chunk(self: Task, job_id: str, chunk: int, documents: list[dict], options: dict) -> None:
    r = resources()
    if _skip(r.jobs, job_id, chunk):
        return
    docs = [Document(d["id"], d["text"], d.get("metadata") or {}) for d in documents]
    try:
        counts = index_documents(r, options["collection"], docs, options["passage_chars"],
                                 options["passage_overlap"])
    except Exception as exc:
        _give_up_or_retry(self, r.jobs, job_id, chunk, len(docs), "index", exc)
        return
    r.jobs.complete_chunk(job_id, chunk, len(docs), counts, kind="index")
    log.info("job %s chunk %d: %d documents, %d passages", job_id, chunk, counts["indexed"], counts["passages"],
             extra={"job_id": job_id, "chunk": chunk, **counts})


def _records(job_id: str, query: dict, result: SearchResult) -> list[tuple[str, list[float], str, dict]]:
    return [(f"{job_id}:{query['id']}:{hit.rank}", hit.embedding, hit.text,
             {"job_id": job_id, "query_id": query["id"], "query": query["text"], "doc_id": hit.doc_id,
              "passage_id": hit.passage_id, "rank": hit.rank, "score": hit.score,
              "initial_rank": hit.initial_rank, "model": result.model})
            for hit in result.hits]


@app.task(name=RERANK_TASK, bind=True)
def rerank_chunk(self: Task, job_id: str, chunk: int, queries: list[dict], options: dict) -> None:
    r = resources()
    if _skip(r.jobs, job_id, chunk):
        return
    try:
        retriever = TwoStageRetriever(r.client, open_collection(r.chroma, options["collection"]))
        found = retriever.search_many([q["text"] for q in queries], options["initial_k"], options["top_k"],
                                      with_embeddings=True, request_ids=[f"{job_id}/{q['id']}" for q in queries])
        records, errors, pairs = [], [], 0
        for query, result in zip(queries, found, strict=True):
            if result.error is not None:
                errors.append({"chunk": chunk, "query_id": query["id"], "message": str(result.error)})
                continue
            records += _records(job_id, query, result)
            pairs += result.pairs
        if records:
            ids, embeddings, texts, metadatas = map(list, zip(*records, strict=True))
            results = open_collection(r.chroma, options["results_collection"], create=True)
            upsert(results, r.chroma, ids, embeddings, texts, metadatas)
    except Exception as exc:
        _give_up_or_retry(self, r.jobs, job_id, chunk, len(queries), "rerank", exc)
        return
    counts = {"queries": len(queries) - len(errors), "failed": len(errors), "pairs": pairs, "records": len(records)}
    if r.jobs.complete_chunk(job_id, chunk, len(queries), counts, kind="rerank"):
        for error in errors:
            r.jobs.add_error(job_id, error)
    log.info("job %s chunk %d: %d queries, %d pairs, %d records", job_id, chunk, counts["queries"], pairs,
             len(records), extra={"job_id": job_id, "chunk": chunk, **counts})
