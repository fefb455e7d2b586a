"""One worker with gRPC and the HTTP gateway for the fuzz tests, small limits so that big inputs stay cheap."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.workers import worker_settings


@pytest.fixture(scope="package")
def fuzzed_worker(tiny_cross_encoder) -> Iterator:
    from crossrank.worker.server import create_server

    server = create_server(worker_settings(tiny_cross_encoder, http_port=-1, max_documents_per_request=50,
                                           max_characters_per_request=20_000, max_queue_pairs=2000))
    assert server.wait_ready(120), server.engine.load_error
    yield server
    server.stop(0)
