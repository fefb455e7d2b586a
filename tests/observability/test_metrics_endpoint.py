"""`crossrank serve --metrics-port` exposes the worker's Prometheus metrics over HTTP."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from crossrank.client import CrossrankClient


def scrape(url: str) -> dict[str, list]:
    text = httpx.get(url, timeout=10).text
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def sample(metrics: dict[str, list], family: str, name: str, **labels: str) -> float:
    return sum(s.value for s in metrics[family] if s.name == name and labels.items() <= s.labels.items())


def test_metrics_after_a_rerank(observed_worker):
    with CrossrankClient(observed_worker.process.address, timeout=30) as client:
        client.rerank("capital of france", ["paris is the capital of france", "cold weather", "berlin"])
    metrics = scrape(observed_worker.metrics_url)

    assert sample(metrics, "crossrank_requests", "crossrank_requests_total", method="Rerank", code="OK") >= 1
    assert sample(metrics, "crossrank_pairs", "crossrank_pairs_total") >= 3
    assert sample(metrics, "crossrank_tokens", "crossrank_tokens_total") > 0
    for histogram in ("crossrank_batch_size", "crossrank_batch_tokens", "crossrank_queue_seconds",
                      "crossrank_inference_seconds"):
        assert sample(metrics, histogram, f"{histogram}_count") >= 1, histogram
    assert "crossrank_queue_depth" in metrics
    assert metrics["crossrank_device_memory_bytes"] == []  # declared; a CPU worker has no device memory


def test_gateway_requests_are_counted(observed_worker):
    httpx.post(f"{observed_worker.http_url}/rerank", json={"query": "q", "texts": ["a", "b"]}, timeout=30)
    metrics = scrape(observed_worker.metrics_url)
    assert sample(metrics, "crossrank_http_requests", "crossrank_http_requests_total", route="/rerank",
                  status="200") >= 1


def test_one_endpoint_labels_each_process(observed_worker):
    """Split, the frontends count the calls and the core the pairs; one scrape holds both."""
    if not observed_worker.frontends:
        pytest.skip("one process: no process label")
    with CrossrankClient(observed_worker.process.address, timeout=30) as client:
        before = scrape(observed_worker.metrics_url)
        client.rerank("capital of france", ["paris", "cold weather", "berlin", "rome"])
    metrics = scrape(observed_worker.metrics_url)
    processes = {s.labels["process"] for samples in metrics.values() for s in samples}
    assert processes == {"core", "frontend-0", "frontend-1"}

    def calls(m):
        return sample(m, "crossrank_requests", "crossrank_requests_total", method="Rerank", code="OK")

    assert calls(metrics) - calls(before) == 1
    assert sample(metrics, "crossrank_requests", "crossrank_requests_total", process="core") == 0
    pairs = sample(metrics, "crossrank_pairs", "crossrank_pairs_total", process="core")
    assert pairs - sample(before, "crossrank_pairs", "crossrank_pairs_total", process="core") == 4
