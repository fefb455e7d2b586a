"""The worker subprocess that the interop tests (grpcurl, Node) call."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.workers import WorkerProcess, serving_worker


@pytest.fixture(scope="module")
def served(tiny_cross_encoder) -> Iterator[WorkerProcess]:
    with serving_worker(tiny_cross_encoder) as process:
        yield process
