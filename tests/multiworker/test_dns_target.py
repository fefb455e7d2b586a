"""A `dns:///name:port` target is resolved and balanced by gRPC itself (round_robin over its addresses)."""

from __future__ import annotations

from crossrank.client import CrossrankClient


def test_dns_target_reaches_the_worker(worker):
    with CrossrankClient(f"dns:///localhost:{worker.port}", timeout=20) as client:
        response = client.rerank("capital of france", ["paris is the capital of france", "cold weather"])
        assert len(response.results) == 2
        assert client.info().model == worker.settings.model
