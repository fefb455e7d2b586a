"""Chunk bookkeeping: who owns a running chunk (heartbeats), the watchdog that sends silent chunks again, progress.

A chunk is owned from the moment a Celery worker receives its message, and while it runs, its pool
process sends heartbeats. A watchdog thread in every pool process sends again the chunks whose owner
went silent (a killed Celery parent or container, whose messages Redis would hold back for the whole
visibility timeout). The state itself lives in Redis (jobs.py).
"""

from __future__ import annotations

import functools
import logging
import os
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from celery.signals import task_received, worker_process_init
from kombu.exceptions import OperationalError

from crossrank.pipeline.celery_app import app
from crossrank.pipeline.chunks import Chunk, RerankChunk, enqueue
from crossrank.pipeline.jobs import JobStore
from crossrank.pipeline.search import SearchResult
from crossrank.pipeline.settings import PipelineSettings

log = logging.getLogger("crossrank.pipeline")

# Redis (job state, or the broker) out of reach after the client's own retries.
INFRASTRUCTURE_ERRORS = (redis.RedisError, OperationalError)
PROGRESS_EVERY_S = 1.0


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
    return JobStore.from_settings(app.settings)


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
    jobs = JobStore.from_settings(settings)
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
