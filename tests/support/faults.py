"""Processes that the fault tests kill and restart: a private redis-server with AOF, and helpers to
find and kill a Celery worker's pool process, to restart `chroma run` and `crossrank serve` where they
were, and to check that a rerank job ended with exactly the records it should have."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from crossrank import pipeline
from crossrank.common.net import free_port
from crossrank.pipeline.local_process import LocalProcess
from crossrank.pipeline.store import open_collection
from support.pipeline import CORPUS, QUERIES, CeleryWorker, ChromaServer, Pipeline, base_env, settings_for, wait_for

COLLECTION = "faults"
INITIAL_K, TOP_K = 8, 3
STALL_SECONDS = "3"
# One query per chunk: a job of many small chunks, so that a fault lands in the middle of it.
QUERY_RECORDS = [{"id": f"q{i:02d}", "text": f"{QUERIES[i % len(QUERIES)]} {i}"} for i in range(24)]


class RedisServer:
    """`redis-server` on a free port with an append-only file synced on every write (appendfsync always),
    so a kill -9 loses nothing that a client was told is written."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: LocalProcess | None = None

    def start(self) -> RedisServer:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
                "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "no"]
        self.process = LocalProcess("redis", argv, self.folder / "redis.log").start()
        self.process.wait_healthy(self.ping, timeout=30, interval=0.1)
        return self

    def ping(self) -> bool:
        import redis

        with redis.Redis.from_url(self.url, socket_timeout=1, socket_connect_timeout=1) as client:
            return client.ping()

    def kill(self) -> None:
        self.process.proc.send_signal(signal.SIGKILL)
        self.process.proc.wait()

    def shutdown(self) -> None:
        """A clean stop, as `redis-cli shutdown` or a container stop does."""
        subprocess.run(["redis-cli", "-p", str(self.port), "shutdown"], capture_output=True, timeout=30)
        self.process.proc.wait(30)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


def pool_pids(worker: CeleryWorker) -> list[int]:
    from crossrank.pipeline.stack import celery_node_reply

    stats = celery_node_reply(worker.node, settings_for(worker.env).redis_url, "stats", timeout=5)
    assert stats, f"no stats from {worker.node}"
    return stats["pool"]["processes"]


def restart_chroma(server: ChromaServer) -> None:
    """kill -9, then `chroma run` again on the same port and folder."""
    server.process.proc.send_signal(signal.SIGKILL)
    server.process.proc.wait()
    server.process = LocalProcess("chroma", server.process.argv, server.process.log_path).start()
    server.wait_ready()


def kill_group(worker: CeleryWorker) -> None:
    """SIGKILL to the worker and its pool processes at once, as when its container is killed."""
    os.killpg(worker.process.pid, signal.SIGKILL)
    worker.process.proc.wait()


def index_corpus(p: Pipeline) -> None:
    job = pipeline.wait(pipeline.submit_index(CORPUS, COLLECTION, settings=p.settings), timeout=120,
                        settings=p.settings)
    assert job.state == "done" and job.counts["passages"] >= INITIAL_K, job


def submit_and_wait_mid_job(p: Pipeline, chunks_before_fault: int = 3) -> str:
    """A rerank job, once `chunks_before_fault` of its chunks are counted and before it ends."""
    job_id = pipeline.submit_rerank(QUERY_RECORDS, COLLECTION, initial_k=INITIAL_K, top_k=TOP_K, settings=p.settings)
    jobs = p.jobs()
    wait_for(lambda: jobs.get(job_id).chunks_done >= chunks_before_fault, 120, "chunks counted before the fault")
    assert not jobs.get(job_id).finished, "the job ended before the fault: make it longer"
    return job_id


def assert_exact(p: Pipeline, job_id: str, timeout: float = 240) -> None:
    """The job is done with every query counted once, and the store holds exactly its records."""
    job = pipeline.wait(job_id, timeout=timeout, poll=0.2, settings=p.settings)
    n = len(QUERY_RECORDS)
    assert job.state == "done", job
    assert (job.done, job.total, job.chunks_done, job.chunks, job.error_count) == (n, n, n, n, 0), job
    assert job.counts == {"queries": n, "pairs": n * INITIAL_K, "records": n * TOP_K, "failed": 0, "skipped": 0}
    found = open_collection(p.chroma(), f"{COLLECTION}-results").get(include=[])["ids"]
    assert len(found) == len(set(found)) == n * TOP_K
    records = pipeline.results(job_id, settings=p.settings)
    assert sorted((r.query_id, r.rank) for r in records) == [
        (q["id"], rank) for q in QUERY_RECORDS for rank in range(1, TOP_K + 1)]


def pipeline_env(redis_server: RedisServer, worker_address: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return base_env(CROSSRANK_REDIS_URL=redis_server.url, CROSSRANK_CHROMA_PATH=str(tmp_path / "chroma"),
                    CROSSRANK_WORKER_TARGET=worker_address, CROSSRANK_RERANK_CHUNK_SIZE="1",
                    CROSSRANK_STALL_SECONDS=STALL_SECONDS, CROSSRANK_TIMEOUT="5", CROSSRANK_TASK_RETRIES="10",
                    **extra)
