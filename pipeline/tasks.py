"""The two Celery tasks: index a chunk of documents, rerank a chunk of queries.

Delivery: a task message is acknowledged when its task ends (late acks) and goes back to its queue
when its process dies (reject on worker loss). Each chunk is idempotent: records have deterministic
ids and are written with upsert, and the job counts a chunk once (jobs.py), so a chunk that runs
twice changes nothing.

Faults:
- A failing chunk (the gRPC worker, Chroma) is retried with exponential backoff up to
  `task_retries` times, then recorded in its job's errors; inputs that can never succeed (a missing
  collection) are recorded at once.
- Job-state writes retry through Redis outages (jobs.py). Should Redis stay away longer, the
  message is rejected back to its queue: Celery acks a failed task, and a chunk acked but not
  counted would be lost.
- A chunk has an owner that sends heartbeats; a watchdog sends again the chunks whose owner went
  silent (bookkeeping.py).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

from celery import Task
from celery.exceptions import Reject
from celery.signals import worker_process_shutdown
from chromadb.api import ClientAPI

from crossrank.client import (
    AuthenticationError,
    CrossrankClient,
    InvalidRequestError,
    NotServedError,
    OverloadedError,
    UnavailableError,
    backoff,
)
from crossrank.pipeline.bookkeeping import INFRASTRUCTURE_ERRORS, ChunkProgress, owning
from crossrank.pipeline.celery_app import INDEX_TASK, RERANK_TASK, app
from crossrank.pipeline.chunks import Chunk, IndexChunk, RerankChunk
from crossrank.pipeline.jobs import JobStore
from crossrank.pipeline.passages import split_passages
from crossrank.pipeline.records import ResultRecords
from crossrank.pipeline.search import TwoStageRetriever
from crossrank.pipeline.settings import PipelineSettings
from crossrank.pipeline.store import CollectionNotFound, open_chroma, open_collection, upsert

log = logging.getLogger("crossrank.pipeline")

# Retrying these cannot help: record the chunk as failed at once.
PERMANENT_ERRORS = (CollectionNotFound, AuthenticationError, InvalidRequestError, NotServedError, ValueError,
                    TypeError, KeyError)
# A query that met these in a stream is retried with its whole chunk: the worker refused it for now
# (full queue), or its engine core restarted under it. Other per-query errors are the query's own.
RETRY_CHUNK_ERRORS = (OverloadedError, UnavailableError)


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
    return Resources(settings, JobStore.from_settings(settings), CrossrankClient(**settings.client_kwargs()),
                     open_chroma(settings))


@worker_process_shutdown.connect
def _close(**_) -> None:
    if resources.cache_info().currsize:
        resources().client.close()


# -- the tasks ---------------------------------------------------------------------------------------

@app.task(name=INDEX_TASK, bind=True)
def index_chunk(self: Task, message: dict) -> None:
    run_chunk(self, resources(), IndexChunk.from_message(message), "index", index_documents)


@app.task(name=RERANK_TASK, bind=True)
def rerank_chunk(self: Task, message: dict) -> None:
    run_chunk(self, resources(), RerankChunk.from_message(message), "rerank", rerank_queries)


def run_chunk(task: Task, r: Resources, chunk: Chunk, kind: str, work: Callable[[Resources, Chunk], dict]) -> None:
    """Run one chunk as its owner, then count it once; errors per query or line go to the job."""
    where = {"job_id": chunk.job_id, "chunk": chunk.chunk}
    try:
        with owning(r.jobs, chunk, owner=f"{task.request.hostname} pid {os.getpid()}") as owned:
            if not owned:
                return
            try:
                outcome = work(r, chunk)
            except INFRASTRUCTURE_ERRORS:
                raise
            except Exception as exc:
                _give_up_or_retry(task, r.jobs, chunk, kind, exc)
                return
            errors = outcome.pop("errors", [])
            if r.jobs.complete_chunk(chunk.job_id, chunk.chunk, len(chunk), outcome, kind=kind):
                for error in errors:
                    r.jobs.add_error(chunk.job_id, error)
            summary = ", ".join(f"{v} {k}" for k, v in outcome.items())
            log.info("job %s chunk %d: %s", chunk.job_id, chunk.chunk, summary, extra={**where, **outcome})
    except INFRASTRUCTURE_ERRORS as exc:
        log.warning("job %s chunk %d: Redis out of reach (%s: %s); the chunk goes back to its queue", chunk.job_id,
                    chunk.chunk, type(exc).__name__, exc, extra=where)
        raise Reject(exc, requeue=True) from exc


def _give_up_or_retry(task: Task, jobs: JobStore, chunk: Chunk, kind: str, exc: Exception) -> None:
    job_id, number = chunk.job_id, chunk.chunk
    if not isinstance(exc, PERMANENT_ERRORS) and task.request.retries < task.max_retries:
        jobs.note_retry(kind)
        countdown = backoff(task.request.retries, initial=1.0, maximum=60.0)
        log.warning("job %s chunk %d failed (%s: %s); retry %d of %d in %.1fs", job_id, number,
                    type(exc).__name__, exc, task.request.retries + 1, task.max_retries, countdown,
                    extra={"job_id": job_id, "chunk": number})
        raise task.retry(exc=exc, countdown=countdown)
    log.error("job %s chunk %d failed for good: %s: %s", job_id, number, type(exc).__name__, exc,
              extra={"job_id": job_id, "chunk": number})
    if jobs.complete_chunk(job_id, number, len(chunk), {"failed": len(chunk)}, failed=True, kind=kind):
        jobs.add_error(job_id, {"chunk": number, "message": f"{type(exc).__name__}: {exc}",
                                "retries": task.request.retries})


# -- the work ----------------------------------------------------------------------------------------

def index_documents(r: Resources, chunk: IndexChunk) -> dict:
    """Split, embed and upsert the chunk's documents; drop passages an earlier, longer version left."""
    documents = chunk.documents
    passages = [(d, p) for d in documents
                for p in split_passages(d.id, d.text, chunk.passage_chars, chunk.passage_overlap)]
    texts = [p.text for _, p in passages]
    embeddings: list[list[float]] = []
    step = r.settings.embed_batch_size
    for start in range(0, len(texts), step):
        embeddings += r.client.embed(texts[start:start + step], priority=r.settings.bulk_priority).embeddings
    metadatas = [{**d.metadata, "doc_id": d.id, "passage": p.number} for d, p in passages]
    collection = open_collection(r.chroma, chunk.collection, create=True)
    ids = [p.id for _, p in passages]
    upsert(collection, r.chroma, ids, embeddings, texts, metadatas)
    # A document indexed again with fewer passages: its old tail would still be found by search.
    earlier = collection.get(where={"doc_id": {"$in": [d.id for d in documents]}}, include=[])["ids"]
    stale = sorted(set(earlier) - set(ids))
    if stale:
        collection.delete(ids=stale)
    return {"indexed": len(documents), "passages": len(passages)}


def rerank_queries(r: Resources, chunk: RerankChunk) -> dict:
    """Search, rerank and write the chunk's queries: one Embed call, one Chroma query, one RerankStream."""
    retriever = TwoStageRetriever(r.client, open_collection(r.chroma, chunk.collection), r.settings.bulk_priority)
    found = retriever.search_many([q.text for q in chunk.queries], chunk.initial_k, chunk.top_k,
                                  with_embeddings=True, request_ids=[f"{chunk.job_id}/{q.id}" for q in chunk.queries],
                                  on_result=ChunkProgress(r.jobs, chunk))
    transient = next((q.error for q in found if isinstance(q.error, RETRY_CHUNK_ERRORS)), None)
    if transient is not None:  # the chunk is retried later, as a whole; its records' ids are stable
        raise transient
    records, errors, pairs = ResultRecords(), [], 0
    for query, result in zip(chunk.queries, found, strict=True):
        if result.error is not None:
            errors.append({"chunk": chunk.chunk, "query_id": query.id, "message": str(result.error)})
            continue
        records.add(chunk.job_id, query.id, result)
        pairs += result.pairs
    if records.ids:
        results = open_collection(r.chroma, chunk.results_collection, create=True)
        upsert(results, r.chroma, records.ids, records.embeddings, records.texts, records.metadatas)
    return {"queries": len(chunk.queries) - len(errors), "failed": len(errors), "pairs": pairs,
            "records": len(records.ids), "errors": errors}
