"""Fixtures of the fault tests: one `crossrank serve` for the session, and per test a private Redis with
AOF and a pipeline whose chunks go silent after CROSSRANK_STALL_SECONDS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.faults import RedisServer
from support.workers import WorkerProcess, serving_worker


@pytest.fixture(scope="session")
def grpc_worker(tiny_cross_encoder, tiny_bi_encoder) -> Iterator[WorkerProcess]:
    with serving_worker(tiny_cross_encoder, tiny_bi_encoder) as process:
        yield process


@pytest.fixture
def redis_server(tmp_path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()

