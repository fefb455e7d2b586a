"""A client given several workers spreads calls over them and carries on when one stops."""

from __future__ import annotations

from support.workers import worker_settings

from crossrank.client import CrossrankClient, RetryPolicy

DOCS = ["paris is the capital of france", "the weather is cold", "berlin is in germany"]


def served_reranks(server) -> float:
    """Rerank calls this worker answered, from its own metrics."""
    labels = {"method": "Rerank", "code": "OK"}
    return server.engine.metrics.registry.get_sample_value("crossrank_requests_total", labels) or 0.0


def test_calls_spread_over_two_workers_and_survive_one_stopping(tiny_cross_encoder):
    from crossrank.worker.server import create_server

    a = create_server(worker_settings(tiny_cross_encoder))
    b = create_server(worker_settings(tiny_cross_encoder))
    try:
        assert a.wait_ready(120) and b.wait_ready(120)
        # A long cooldown: once b is gone, it must not be tried again during this test.
        targets = f"{a.address},{b.address}"
        with CrossrankClient(targets, timeout=20, retry=RetryPolicy(cooldown=60)) as client:
            for _ in range(10):
                client.rerank("capital of france", DOCS)
            assert served_reranks(a) == 5
            assert served_reranks(b) == 5

            b.stop(0)
            for _ in range(6):
                assert len(client.rerank("capital of france", DOCS).results) == 3
            assert served_reranks(a) == 11
    finally:
        a.stop(0)
        b.stop(0)
