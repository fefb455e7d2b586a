"""One `crossrank serve` subprocess with metrics, the HTTP gateway and JSON debug logs turned on: in one
process, and split into frontends and an engine core (`--frontends 2`, whose one metrics endpoint is the
supervisor's)."""

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
    frontends: int


@pytest.fixture(scope="package", params=[0, pytest.param(2, marks=pytest.mark.slow)],
                ids=["one-process", "frontends-2"])
def observed_worker(request, tiny_cross_encoder) -> Iterator[ObservedWorker]:
    metrics_port, http_port = free_port(), free_port()
    process = WorkerProcess(tiny_cross_encoder, None, None, "--metrics-port", str(metrics_port),
                            "--http-port", str(http_port), "--json-logs", "--log-level", "DEBUG",
                            "--frontends", str(request.param))
    try:
        process.wait_serving()
        yield ObservedWorker(process, f"http://127.0.0.1:{metrics_port}/metrics", f"http://127.0.0.1:{http_port}",
                             request.param)
    finally:
        process.stop()
