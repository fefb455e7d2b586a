"""A worker serving gRPC and the HTTP gateway side by side, for comparing the two."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from support.gateway import SERVED_NAME, TOKEN, serving
from support.workers import worker_settings


@pytest.fixture(scope="package")
def gateway(tiny_cross_encoder) -> Iterator:
    with serving(tiny_cross_encoder) as server:
        yield server


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


@pytest.fixture(scope="package")
def secured(tiny_cross_encoder) -> Iterator:
    """A worker that requires TOKEN and reports SERVED_NAME, with the gateway on a free port."""
    from crossrank.worker.server import create_server

    server = create_server(worker_settings(tiny_cross_encoder, http_port=-1, auth_token=TOKEN,
                                           served_model_name=SERVED_NAME))
    assert server.wait_ready(120), server.engine.load_error
    yield server
    server.stop(0)


@pytest.fixture(scope="package")
def secured_url(secured) -> str:
    return f"http://127.0.0.1:{secured.http_port}"


@pytest.fixture
def secured_http(secured_url) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=secured_url, timeout=30, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield client


@pytest.fixture(scope="package")
def secured_grpc(secured) -> Iterator:
    from crossrank.client import CrossrankClient

    with CrossrankClient(secured.address, token=TOKEN, timeout=30) as client:
        yield client
