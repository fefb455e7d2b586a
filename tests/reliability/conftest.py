"""Fixtures of the fault tests: one `crossrank serve` for the session, and per test a private Redis with
AOF and a pipeline whose chunks go silent after CROSSRANK_STALL_SECONDS."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.workers import WorkerProcess, serving_worker

sys.path.append(str(Path(__file__).parent))
sys.path.append(str(Path(__file__).parent.parent / "pipeline"))

from fault_support import RedisServer  # noqa: E402


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

