"""An HTTP client that times out or disconnects has its queued pairs dropped, as over gRPC."""

from __future__ import annotations

import time

import httpx
import pytest
from support.workers import worker_settings


def test_a_client_that_times_out_has_its_pairs_dropped(tiny_cross_encoder):
    from crossrank.worker.server import create_server

    # Small batches make a big request take many forward passes, so a short timeout ends it midway.
    server = create_server(worker_settings(tiny_cross_encoder, http_port=-1, max_batch_pairs=2,
                                           max_batch_tokens=256))
    assert server.wait_ready(60)
    observer = server.engine.metrics.observer(server.settings.model)
    url = f"http://127.0.0.1:{server.http_port}/rerank"
    try:
        docs = [f"document number {i} " * 8 for i in range(1000)]
        with pytest.raises(httpx.TimeoutException):
            httpx.post(url, json={"query": "query", "texts": docs}, timeout=0.3)
        time.sleep(1.0)  # let the gateway notice and the batcher drain
        scored, dropped = observer.value("pairs"), observer.value("dropped_pairs")
        assert dropped > 0, "the abandoned request's pairs should be dropped"
        assert scored < 1000 + 3, f"{scored} pairs scored: the abandoned request ran to the end"
        assert httpx.post(url, json={"query": "q", "texts": ["a"]}, timeout=30).status_code == 200
    finally:
        server.stop(0)
