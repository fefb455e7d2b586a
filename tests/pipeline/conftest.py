"""Fixtures of the pipeline tests: our Redis db, one `crossrank serve` for the session, Celery per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.pipeline import (
    REDIS_URL,
    Pipeline,
    base_env,
    flush_db,
    redis_client,
    start_celery,
)
from support.workers import WorkerProcess, serving_worker

from crossrank.common.net import free_port


@pytest.fixture(scope="session")
def redis_db() -> Iterator[str]:
    """Our db of the tests' Redis (REDIS_URL): ours alone, empty at the start and at the end of the session."""
    import redis

    client = redis_client()
    try:
        client.ping()
    except redis.ConnectionError as exc:
        client.close()
        pytest.skip(f"no Redis at {REDIS_URL}: {exc}")
    client.flushdb()
    try:
        yield REDIS_URL
    finally:
        client.flushdb()
        client.close()


@pytest.fixture(scope="session")
def grpc_worker(tiny_cross_encoder, tiny_bi_encoder) -> Iterator[WorkerProcess]:
    """`crossrank serve` with both tiny models, shared by every pipeline test."""
    with serving_worker(tiny_cross_encoder, tiny_bi_encoder) as process:
        yield process


@pytest.fixture(scope="module")
def embedded_pipeline(redis_db, grpc_worker, tmp_path_factory) -> Iterator[Pipeline]:
    """`crossrank pipeline worker` writing to embedded Chroma in a fresh folder, with its metrics endpoint."""
    root = tmp_path_factory.mktemp("embedded-pipeline")
    env = base_env(CROSSRANK_REDIS_URL=redis_db, CROSSRANK_CHROMA_PATH=str(root / "chroma"),
                   CROSSRANK_WORKER_TARGET=grpc_worker.address)
    metrics_port = free_port()
    flush_db()
    worker = start_celery({**env, "CROSSRANK_PIPELINE_METRICS_PORT": str(metrics_port), "CROSSRANK_JSON_LOGS": "1"},
                          root)
    try:
        yield Pipeline(env, worker, metrics_url=f"http://127.0.0.1:{metrics_port}/metrics")
    finally:
        worker.stop()
