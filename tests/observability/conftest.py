"""One `crossrank serve` subprocess with metrics, the HTTP gateway and JSON debug logs turned on."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from support.workers import WorkerProcess

from crossrank.common.net import free_port


@dataclass
class ObservedWorker:
    process: WorkerProcess
    metrics_url: str
    http_url: str


@pytest.fixture(scope="package")
def observed_worker(tiny_cross_encoder) -> Iterator[ObservedWorker]:
    metrics_port, http_port = free_port(), free_port()
    process = WorkerProcess(tiny_cross_encoder, None, None, "--metrics-port", str(metrics_port),
                            "--http-port", str(http_port), "--json-logs", "--log-level", "DEBUG")
    try:
        process.wait_serving()
        yield ObservedWorker(process, f"http://127.0.0.1:{metrics_port}/metrics", f"http://127.0.0.1:{http_port}")
    finally:
        process.stop()
