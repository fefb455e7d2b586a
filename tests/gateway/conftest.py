"""A worker serving gRPC and the HTTP gateway side by side, for comparing the two."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from support.workers import worker_settings


@pytest.fixture(scope="package")
def gateway(tiny_cross_encoder) -> Iterator:
    """One in-process worker with the gateway on a free port (`http_port=-1`)."""
    from crossrank.worker.server import create_server

    server = create_server(worker_settings(tiny_cross_encoder, http_port=-1))
    assert server.wait_ready(120), server.engine.load_error
    yield server
    server.stop(0)


@pytest.fixture(scope="package")
def base_url(gateway) -> str:
    return f"http://127.0.0.1:{gateway.http_port}"


@pytest.fixture
def http(base_url) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="package")
def grpc_client(gateway) -> Iterator:
    from crossrank.client import CrossrankClient

    with CrossrankClient(gateway.address, timeout=30) as client:
        yield client
