"""Each single-process fault of a running rerank job, against real processes, ends with exact counts.

Per test: a private redis-server with AOF, a `crossrank pipeline worker` (embedded Chroma, or `chroma
run` where Chroma is the fault), the session's `crossrank serve`, and a job of 24 one-query chunks.
The fault lands once a few chunks are counted; afterwards the job must be `done` with every query
counted once and exactly its records in the results collection (support.faults.assert_exact).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import time
from collections.abc import Iterator

import pytest
from support.faults import (
    assert_exact,
    index_corpus,
    kill_group,
    pipeline_env,
    pool_pids,
    restart_chroma,
    submit_and_wait_mid_job,
)
from support.pipeline import ChromaServer, Pipeline, start_celery, wait_for
from support.workers import WorkerProcess, serving_worker

pytestmark = pytest.mark.slow


@pytest.fixture
def embedded(redis_server, grpc_worker, tmp_path):
    """A pipeline on embedded Chroma with one Celery worker (a single pool process)."""
    p = Pipeline(pipeline_env(redis_server, grpc_worker.address, tmp_path))
    p.celery = start_celery(p.env, tmp_path)
    try:
        index_corpus(p)
        yield p
    finally:
        p.celery.stop()


@contextlib.contextmanager
def mid_chunk(p: Pipeline, job_id: str, pool_pid: int, grpc_worker: WorkerProcess) -> Iterator[None]:
    """The gRPC worker paused while the pool process `pool_pid` owns a chunk, so a fault lands mid-chunk."""
    jobs = p.jobs()

    def owned() -> set[str]:
        owners = jobs.redis.hgetall(f"crossrank:job:{job_id}:owners")
        return {chunk for chunk, o in owners.items() if json.loads(o)["owner"].endswith(f" pid {pool_pid}")}

    def blocked() -> bool:
        # A chunk seen owned may be past its last gRPC call and about to be counted; one still owned a
        # second later is waiting on the paused worker, so the fault lands before it can end.
        first = owned()
        time.sleep(1)
        return bool(first & owned())

    os.kill(grpc_worker.proc.pid, signal.SIGSTOP)
    try:
        wait_for(blocked, 30, "the pool process waits on the paused worker mid-chunk")
        yield
    finally:
        os.kill(grpc_worker.proc.pid, signal.SIGCONT)


@pytest.mark.parametrize("stop", ["kill", "shutdown"])
def test_a_redis_restart_mid_job_loses_no_chunk(embedded, redis_server, stop):
    job_id = submit_and_wait_mid_job(embedded)
    getattr(redis_server, stop)()  # kill -9, or a clean SHUTDOWN
    time.sleep(2)  # an outage longer than one chunk
    redis_server.start()
    assert_exact(embedded, job_id)


def test_a_killed_pool_process_gives_its_chunk_back(embedded, grpc_worker):
    job_id = submit_and_wait_mid_job(embedded)
    [child] = pool_pids(embedded.celery)
    with mid_chunk(embedded, job_id, child, grpc_worker):
        os.kill(child, signal.SIGKILL)
    assert_exact(embedded, job_id)
    assert "WorkerLostError" in embedded.celery.output()


def test_a_killed_celery_parent_leaves_a_stalled_chunk_that_another_worker_sends_again(embedded, grpc_worker,
                                                                                       tmp_path):
    job_id = submit_and_wait_mid_job(embedded)
    [child] = pool_pids(embedded.celery)
    with mid_chunk(embedded, job_id, child, grpc_worker):
        os.kill(embedded.celery.process.pid, signal.SIGKILL)  # the parent alone; its pool process is orphaned
        embedded.celery.process.proc.wait()
        embedded.celery.stop()  # the orphan too, before another worker opens the same embedded Chroma
    embedded.celery = start_celery(embedded.env, tmp_path)
    assert_exact(embedded, job_id)
    assert f"job {job_id}: chunks " in embedded.celery.output()  # "... have no live owner; sent again"


def test_a_killed_worker_container_shows_stalled_and_resume_sends_the_missing_chunks(embedded, tmp_path):
    job_id = submit_and_wait_mid_job(embedded)
    kill_group(embedded.celery)
    jobs = embedded.jobs()
    stalled = wait_for(lambda: (s := embedded.cli_json("jobs", "status", job_id))["state"] == "stalled" and s, 60,
                       "jobs status says stalled")
    assert stalled["stalled"] and f"crossrank jobs resume {job_id}" in stalled["stalled"]
    missing = sorted(set(range(jobs.get(job_id).chunks)) - {int(c) for c in jobs.redis.smembers(
        f"crossrank:job:{job_id}:chunks")})
    resumed = embedded.cli_json("jobs", "resume", job_id)
    assert resumed == {"job_id": job_id, "chunks": missing}
    embedded.celery = start_celery(embedded.env, tmp_path)
    assert_exact(embedded, job_id)


def test_a_grpc_worker_killed_and_restarted_mid_job(embedded, grpc_worker, tiny_cross_encoder, tiny_bi_encoder):
    job_id = submit_and_wait_mid_job(embedded)
    grpc_worker.proc.kill()
    grpc_worker.proc.wait()
    # The session's worker serves again on the same address, as a restarted container would.
    restarted = WorkerProcess(tiny_cross_encoder, tiny_bi_encoder, grpc_worker.port)
    grpc_worker.log.close()
    grpc_worker.proc, grpc_worker.log = restarted.proc, restarted.log
    grpc_worker.wait_serving()
    assert_exact(embedded, job_id)
    assert re.search(rf"job {job_id} chunk \d+ failed \((Unavailable|DeadlineExceeded)Error", embedded.celery.output())


def test_an_engine_core_killed_mid_job_under_frontends(redis_server, tiny_cross_encoder, tiny_bi_encoder, tmp_path):
    """`serve --frontends 2`: the core dies with `kill -9`, serve starts another, the job ends exact."""
    with serving_worker(tiny_cross_encoder, tiny_bi_encoder, "--frontends", "2") as split:
        p = Pipeline(pipeline_env(redis_server, split.address, tmp_path))
        p.celery = start_celery(p.env, tmp_path)
        try:
            index_corpus(p)
            job_id = submit_and_wait_mid_job(p)
            os.kill(int(re.findall(r"started core \(pid (\d+)\)", split.output())[-1]), signal.SIGKILL)
            assert_exact(p, job_id)
        finally:
            p.celery.stop()
        assert "the engine core died (exit code -9)" in split.output()


def test_a_chroma_server_killed_and_restarted_mid_job(redis_server, grpc_worker, tmp_path):
    chroma = ChromaServer(tmp_path / "chroma-server", tmp_path / "chroma.log")
    try:
        chroma.wait_ready()
        p = Pipeline(pipeline_env(redis_server, grpc_worker.address, tmp_path, CROSSRANK_CHROMA_URL=chroma.url))
        p.celery = start_celery(p.env, tmp_path, concurrency=2)
        try:
            index_corpus(p)
            job_id = submit_and_wait_mid_job(p)
            restart_chroma(chroma)
            assert_exact(p, job_id)
        finally:
            p.celery.stop()
    finally:
        chroma.stop()
