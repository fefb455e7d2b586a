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
- A chunk is owned from the moment a Celery worker receives its message, and while it runs, its
  pool process sends heartbeats. A watchdog thread in every pool process sends again the chunks
  whose owner went silent (a killed Celery parent or container, whose messages Redis would hold
  back for the whole visibility timeout).
"""

from __future__ import annotations

import functools
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import redis
from celery import Task
from celery.exceptions import Reject
from celery.signals import task_received, worker_process_init, worker_process_shutdown
from chromadb.api import ClientAPI
from kombu.exceptions import OperationalError

from crossrank.client import AuthenticationError, CrossrankClient, InvalidRequestError, NotServedError, backoff
from crossrank.pipeline.celery_app import INDEX_TASK, RERANK_TASK, app
from crossrank.pipeline.chunks import IndexChunk, RerankChunk, enqueue
from crossrank.pipeline.jobs import JobStore
from crossrank.pipeline.passages import split_passages
from crossrank.pipeline.search import SearchResult, TwoStageRetriever
from crossrank.pipeline.settings import PipelineSettings
from crossrank.pipeline.store import CollectionNotFound, open_chroma, open_collection, upsert

log = logging.getLogger("crossrank.pipeline")

# Retrying these cannot help: record the chunk as failed at once.
PERMANENT_ERRORS = (CollectionNotFound, AuthenticationError, InvalidRequestError, NotServedError, ValueError,
                    TypeError, KeyError)
# Redis (job state, or the broker) out of reach after the client's own retries.
INFRASTRUCTURE_ERRORS = (redis.RedisError, OperationalError)
PROGRESS_EVERY_S = 1.0

Chunk = IndexChunk | RerankChunk


@dataclass
class Resources:
    """What a pool process keeps between tasks; created on first use, after the fork."""

    settings: PipelineSettings
    jobs: JobStore
    client: CrossrankClient
    chroma: ClientAPI


def job_store(settings: PipelineSettings) -> JobStore:
    return JobStore.from_url(settings.redis_url, settings.key_prefix, settings.stall_seconds)


@functools.cache
def resources() -> Resources:
    settings: PipelineSettings = app.settings
    return Resources(settings, job_store(settings), CrossrankClient(**settings.client_kwargs()),
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


# -- ownership: heartbeats, and the watchdog that sends silent chunks again ---------------------------

@contextmanager
def owning(jobs: JobStore, chunk: Chunk, owner: str) -> Iterator[bool]:
    """The chunk is `owner`'s while the block runs, with a heartbeat; False when its job is over."""
    state = jobs.start(chunk.job_id, chunk.chunk, owner)
    if state != "running":
        log.info("job %s chunk %d skipped: job is %s", chunk.job_id, chunk.chunk, state or "gone",
                 extra={"job_id": chunk.job_id, "chunk": chunk.chunk})
        yield False
        return
    stop = threading.Event()
    beating = threading.Thread(target=_beat, args=(jobs, chunk, owner, stop), daemon=True, name="crossrank-heartbeat")
    beating.start()
    try:
        yield True
    finally:
        stop.set()


def _beat(jobs: JobStore, chunk: Chunk, owner: str, stop: threading.Event) -> None:
    while not stop.wait(jobs.stall_after / 3):
        try:
            if not jobs.beat(chunk.job_id, chunk.chunk, owner):
                return  # counted, or claimed by a watchdog: not ours any more
        except INFRASTRUCTURE_ERRORS as exc:
            log.debug("heartbeat of job %s chunk %d failed: %s", chunk.job_id, chunk.chunk, exc)


@functools.cache
def _receiver_jobs() -> JobStore:
    return job_store(app.settings)


@task_received.connect
def _own_on_receipt(request, **_) -> None:
    """Own a chunk from the moment this worker takes its message, before a pool process starts it: should the
    worker die in between, the entry goes silent and a watchdog sends the chunk again."""
    message = request.args[0] if request.args else None
    if not isinstance(message, dict) or "job_id" not in message:
        return
    try:
        _receiver_jobs().start(message["job_id"], message["chunk"], f"{request.hostname} pid {os.getpid()}")
    except INFRASTRUCTURE_ERRORS as exc:
        log.warning("job %s chunk %s: could not record its owner: %s", message["job_id"], message["chunk"], exc)


@worker_process_init.connect
def _start_watchdog(**_) -> None:
    settings: PipelineSettings = app.settings
    threading.Thread(target=watch, args=(settings, f"pid {os.getpid()}"), daemon=True,
                     name="crossrank-watchdog").start()


def watch(settings: PipelineSettings, claimer: str) -> None:
    """Forever: send again every chunk whose owner has been silent for `stall_seconds`."""
    jobs = job_store(settings)
    while True:
        time.sleep(random.uniform(0.25, 0.5) * settings.stall_seconds)
        try:
            requeue_stalled(jobs, settings, claimer)
        except INFRASTRUCTURE_ERRORS as exc:
            log.debug("stall check failed: %s", exc)


def requeue_stalled(jobs: JobStore, settings: PipelineSettings, claimer: str) -> int:
    sent = 0
    for job_id in jobs.active():
        messages = jobs.claim_stalled(job_id, claimer)
        if messages:
            kind = jobs.get(job_id).kind
            log.warning("job %s: chunks %s have no live owner; sent again", job_id,
                        ", ".join(str(m["chunk"]) for m in messages), extra={"job_id": job_id})
            enqueue(settings, kind, messages)
            sent += len(messages)
    return sent


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
        embeddings += r.client.embed(texts[start:start + step]).embeddings
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


@dataclass
class ResultRecords:
    """A rerank chunk's records for the results collection, column by column as Chroma takes them."""

    ids: list[str] = field(default_factory=list)
    embeddings: list[list[float]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    metadatas: list[dict] = field(default_factory=list)

    def add(self, job_id: str, query_id: str, result: SearchResult) -> None:
        for hit in result.hits:
            self.ids.append(f"{job_id}:{query_id}:{hit.rank}")
            self.embeddings.append(hit.embedding)
            self.texts.append(hit.text)
            self.metadatas.append({"job_id": job_id, "query_id": query_id, "query": result.query,
                                   "doc_id": hit.doc_id, "passage_id": hit.passage_id, "rank": hit.rank,
                                   "score": hit.score, "initial_rank": hit.initial_rank, "model": result.model})


class ChunkProgress:
    """Queries and pairs done so far, written to the job on the first result, then at most once a second."""

    def __init__(self, jobs: JobStore, chunk: RerankChunk):
        self.jobs, self.chunk = jobs, chunk
        self.so_far = {"items": 0, "queries": 0, "pairs": 0}
        self.written = float("-inf")

    def __call__(self, result: SearchResult) -> None:
        self.so_far["items"] += 1
        if result.error is None:
            self.so_far["queries"] += 1
            self.so_far["pairs"] += result.pairs
        if time.monotonic() - self.written >= PROGRESS_EVERY_S:
            self.written = time.monotonic()
            self.jobs.progress(self.chunk.job_id, self.chunk.chunk, self.so_far)


def rerank_queries(r: Resources, chunk: RerankChunk) -> dict:
    """Search, rerank and write the chunk's queries: one Embed call, one Chroma query, one RerankStream."""
    retriever = TwoStageRetriever(r.client, open_collection(r.chroma, chunk.collection))
    found = retriever.search_many([q.text for q in chunk.queries], chunk.initial_k, chunk.top_k,
                                  with_embeddings=True, request_ids=[f"{chunk.job_id}/{q.id}" for q in chunk.queries],
                                  on_result=ChunkProgress(r.jobs, chunk))
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
