"""Jobs submitted before their workers exist: a late gRPC worker, and a job cancelled while queued.

Each test starts its own Celery worker after submitting, on a fresh Redis db of its own and its own Chroma folder.
"""

from __future__ import annotations

import re

import pytest
from support.pipeline import CORPUS, Pipeline, base_env, flush_db, start_celery, wait_for
from support.workers import WorkerProcess

from crossrank import pipeline
from crossrank.common.net import free_port
from crossrank.pipeline.store import CollectionNotFound, open_collection

pytestmark = pytest.mark.slow  # end to end, with real processes: `pytest -m 'not slow'` skips it


def test_a_job_waits_for_a_late_grpc_worker_and_completes(redis_db, tiny_cross_encoder, tiny_bi_encoder, tmp_path):
    port = free_port()  # nothing listens here yet
    # A short deadline per call, so that the task itself fails and is retried with backoff.
    env = base_env(CROSSRANK_REDIS_URL=redis_db, CROSSRANK_CHROMA_PATH=str(tmp_path / "chroma"),
                   CROSSRANK_WORKER_TARGET=f"127.0.0.1:{port}", CROSSRANK_TIMEOUT="2", CROSSRANK_TASK_RETRIES="10",
                   CROSSRANK_INDEX_CHUNK_SIZE="3")
    p = Pipeline(env)
    flush_db()
    job_id = pipeline.submit_index(CORPUS[:6], "late-worker", settings=p.settings)
    p.celery = start_celery(env, tmp_path, concurrency=None)
    grpc = None
    try:
        jobs = p.jobs()
        wait_for(lambda: jobs.stats().get("retries:index", 0) >= 1, 120, "a chunk retried")
        assert p.celery.pool_size() == 1  # `crossrank pipeline worker` on embedded Chroma: one process
        early = jobs.get(job_id)
        assert early.state == "running" and early.done == 0 and early.errors == []

        grpc = WorkerProcess(tiny_cross_encoder, tiny_bi_encoder, port)  # the same address, now serving
        grpc.wait_serving()
        job = pipeline.wait(job_id, timeout=240, settings=p.settings)
        assert job.state == "done", job
        assert job.counts == {"indexed": 6, "passages": 6, "skipped": 0, "failed": 0}  # short documents
        assert job.errors == [] and job.chunks_done == 2
        assert open_collection(p.chroma(), "late-worker").count() == 6
        retried = rf"job {job_id} chunk \d failed \((Unavailable|DeadlineExceeded)Error: .*\); retry 1 of 10"
        assert re.search(retried, p.celery.output())
    finally:
        p.celery.stop()
        if grpc is not None:
            grpc.stop()


def test_a_cancelled_job_is_skipped_when_a_worker_comes(redis_db, grpc_worker, tmp_path):
    env = base_env(CROSSRANK_REDIS_URL=redis_db, CROSSRANK_CHROMA_PATH=str(tmp_path / "chroma"),
                   CROSSRANK_WORKER_TARGET=grpc_worker.address, CROSSRANK_INDEX_CHUNK_SIZE="2")
    p = Pipeline(env)
    flush_db()
    cancelled = pipeline.submit_index(CORPUS, "cancelled", settings=p.settings)
    chunks = p.jobs().get(cancelled).chunks
    assert chunks == 6
    out = p.cli_json("jobs", "cancel", cancelled)
    assert out["id"] == cancelled and out["state"] == "cancelled" and out["finished_at"] is not None
    # Queued behind the cancelled job's chunks; one worker process takes them in order.
    after = pipeline.submit_index(CORPUS[:2], "after-cancel", settings=p.settings)

    # Celery's own command, without --concurrency: embedded Chroma gets one pool process.
    p.celery = start_celery(env, tmp_path, entry="celery", concurrency=None)
    try:
        assert p.celery.pool_size() == 1
        assert pipeline.wait(after, timeout=120, settings=p.settings).state == "done"
        job = pipeline.status(cancelled, settings=p.settings)
        assert job.state == "cancelled" and job.done == 0 and job.chunks_done == 0
        assert job.counts["indexed"] == 0 and job.counts["passages"] == 0
        skipped = re.findall(rf"job {cancelled} chunk (\d+) skipped: job is cancelled", p.celery.output())
        assert sorted(int(c) for c in skipped) == list(range(chunks))
        with pytest.raises(CollectionNotFound):
            open_collection(p.chroma(), "cancelled")
        assert open_collection(p.chroma(), "after-cancel").count() == 2
        listed = p.cli_json("jobs", "list")
        assert [(j["id"], j["state"]) for j in listed] == [(after, "done"), (cancelled, "cancelled")]
    finally:
        p.celery.stop()
