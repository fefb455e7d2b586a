"""Admission per priority on a real in-process worker with its model held: a bulk backlog at its
queue limit, or long enough to miss any deadline, neither refuses nor delays an interactive
request, bulk is refused first, and the metrics per priority class say what each class got."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest
from support.workers import worker_in_process

from crossrank.worker.engine import RerankQuery
from crossrank.worker.errors import OverloadedError

BULK = 10
DOCS = [f"document number {i}" for i in range(5)]


@contextlib.contextmanager
def held_model(server):
    """The model waits inside its forward pass until the block ends: queued work stays queued."""
    held = threading.Event()
    runtime = server.engine._score_batcher.runtime
    forward = runtime.forward
    runtime.forward = lambda features: held.wait(60) and forward(features)
    try:
        yield
    finally:
        held.set()


def fill_with_bulk(engine, timeout=None):
    """Bulk requests until one is refused; returns those admitted and the refusal."""
    admitted = []
    for _ in range(100):
        try:
            admitted.append(engine.submit_rerank(RerankQuery("q", DOCS, priority=BULK), timeout))
        except OverloadedError as exc:
            return admitted, exc
    raise AssertionError("the bulk backlog was never refused")


def sample(server, name, priority_class):
    labels = {"model": server.settings.model, "priority_class": priority_class}
    return server.engine.metrics.registry.get_sample_value(name, labels) or 0.0


def test_a_bulk_backlog_at_its_limit_refuses_bulk_and_admits_interactive(tiny_cross_encoder):
    with worker_in_process(tiny_cross_encoder, max_queue_pairs=20, max_batch_pairs=2, max_batch_tokens=256) as server:
        engine = server.engine
        scored_before = {c: sample(server, "crossrank_priority_pairs_total", c) for c in ("interactive", "bulk")}
        with held_model(server):
            bulk, refusal = fill_with_bulk(engine)
            assert "queue full" in str(refusal)
            interactive = engine.submit_rerank(RerankQuery("q", DOCS), timeout=60)  # not refused
            with pytest.raises(OverloadedError, match="queue full"):
                engine.submit_rerank(RerankQuery("q", DOCS, priority=BULK))
            while engine._tokenizing.total():  # until the tokenizers have queued what they hold
                time.sleep(0.01)
            assert sample(server, "crossrank_priority_queue_depth", "bulk") > 0
        assert len(interactive.result().results) == len(DOCS)
        assert all(len(r.result().results) == len(DOCS) for r in bulk)
        scored = {
            c: sample(server, "crossrank_priority_pairs_total", c) - scored_before[c] for c in ("interactive", "bulk")
        }
        assert scored == {"interactive": len(DOCS), "bulk": len(DOCS) * len(bulk)}
        assert sample(server, "crossrank_priority_queue_seconds_count", "bulk") == len(bulk)
        assert sample(server, "crossrank_priority_queue_depth", "bulk") == 0


def test_a_bulk_backlog_that_would_miss_any_deadline_does_not_delay_interactive(tiny_cross_encoder):
    with worker_in_process(tiny_cross_encoder, max_queue_pairs=1000, max_batch_pairs=2, max_batch_tokens=256) as server:
        engine = server.engine
        with held_model(server):
            backlog = [engine.submit_rerank(RerankQuery("q", DOCS, priority=BULK)) for _ in range(20)]
            engine._score_batcher.seconds_per_pair = 1.0  # as if measured: 100 bulk pairs take 100 s
            interactive = engine.submit_rerank(RerankQuery("q", DOCS), timeout=60)  # admitted
            with pytest.raises(OverloadedError, match="estimated wait"):
                engine.submit_rerank(RerankQuery("q", DOCS, priority=BULK), timeout=60)
        assert len(interactive.result().results) == len(DOCS)
        assert all(len(r.result().results) == len(DOCS) for r in backlog)
