"""Metric hooks in the engine: the queue-time histogram per request, device memory on a GPU."""

from __future__ import annotations

import pytest
import torch
from support.workers import worker_settings

from crossrank.client import CrossrankClient
from crossrank.worker.metrics import WorkerMetrics


def test_queue_time_observed_once_per_request(worker):
    registry = worker.engine.metrics.registry
    labels = {"model": worker.settings.model}

    def observed() -> float:
        return registry.get_sample_value("crossrank_queue_seconds_count", labels) or 0.0

    before = observed()
    with CrossrankClient(worker.address, timeout=30) as client:
        client.rerank("capital of france", ["paris", "berlin", "cold weather"])
        client.score([("capital of france", "paris")])
    assert observed() == before + 2


def test_no_device_memory_on_cpu():
    metrics = WorkerMetrics()
    metrics.track_device_memory(torch.device("cpu"))
    assert not list(metrics.device_memory.collect()[0].samples)


def test_device_memory_read_at_scrape_time(monkeypatch):
    metrics = WorkerMetrics()
    metrics.track_device_memory(torch.device("cuda", 0))
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: 12345)
    assert metrics.registry.get_sample_value("crossrank_device_memory_bytes", {"device": "cuda:0"}) == 12345


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_device_memory_on_gpu(tiny_cross_encoder):
    from crossrank.worker.server import create_server

    server = create_server(worker_settings(tiny_cross_encoder, device="cuda"))
    try:
        assert server.wait_ready(120), server.engine.load_error
        value = server.engine.metrics.registry.get_sample_value("crossrank_device_memory_bytes",
                                                                {"device": "cuda:0"})
    finally:
        server.stop(0)
    assert value and value > 0
