"""Every gRPC outcome is counted in crossrank_requests_total, and a caller that gives up logs one
INFO line, never an ERROR traceback."""

from __future__ import annotations

import logging
import time

import grpc
import pytest
from support.workers import worker_settings

from crossrank.protos import pb, pb_grpc

DOCS = [f"document number {i} " * 8 for i in range(1000)]


@pytest.fixture(scope="module")
def slow_worker(tiny_cross_encoder):
    """Small batches: a 1000-document request takes many forward passes, so callers can give up midway."""
    from crossrank.worker.server import create_server

    server = create_server(worker_settings(tiny_cross_encoder, max_batch_pairs=2, max_batch_tokens=256,
                                           auth_token="t0ken"))
    assert server.wait_ready(60)
    yield server
    server.stop(0)


def _count(server, method: str, code: str, name: str = "crossrank_requests_total") -> float:
    return server.engine.metrics.registry.get_sample_value(name, {"method": method, "code": code}) or 0.0


def _timed(server, method: str, code: str) -> float:
    """Calls of this outcome in the time histogram: every call that reached the handlers."""
    return _count(server, method, code, "crossrank_request_seconds_count")


def _stub(channel: grpc.Channel):
    return pb_grpc.RerankerStub(channel)


AUTH = (("authorization", "Bearer t0ken"),)


def _wait_for_count(server, method: str, code: str, at_least: float) -> float:
    for _ in range(100):  # the server records the outcome just after the client sees it
        if _count(server, method, code) >= at_least:
            break
        time.sleep(0.05)
    return _count(server, method, code)


def test_a_deadline_is_counted_and_logged_as_one_info_line(slow_worker, caplog):
    caplog.set_level(logging.INFO)
    before = _count(slow_worker, "Rerank", "DEADLINE_EXCEEDED")
    # As if measured much faster than it is: admission, which would refuse 1,000 pairs a 0.2 s deadline at
    # the measured rate, lets the request in, and the deadline then passes while it runs.
    slow_worker.engine._score_batcher.seconds_per_pair = 1e-6
    with grpc.insecure_channel(slow_worker.address) as channel, \
            pytest.raises(grpc.RpcError) as err:
        _stub(channel).Rerank(pb.RerankRequest(query="q", documents=DOCS), timeout=0.2, metadata=AUTH)
    assert err.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert _wait_for_count(slow_worker, "Rerank", "DEADLINE_EXCEEDED", before + 1) == before + 1
    assert any(r.getMessage() == "Rerank ended: deadline exceeded" and r.levelno == logging.INFO
               for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def test_a_cancel_is_counted_and_logged_as_one_info_line(slow_worker, caplog):
    caplog.set_level(logging.INFO)
    before = _count(slow_worker, "Rerank", "CANCELLED")
    with grpc.insecure_channel(slow_worker.address) as channel:
        future = _stub(channel).Rerank.future(pb.RerankRequest(query="q", documents=DOCS), timeout=60,
                                              metadata=AUTH)
        queue = slow_worker.engine.queue("score")
        for _ in range(2000):  # cancel while its inputs wait for batches: it is admitted, and far from done
            if queue.pending_pairs() > 0:
                break
            time.sleep(0.005)
        assert future.cancel()
        assert _wait_for_count(slow_worker, "Rerank", "CANCELLED", before + 1) == before + 1
    assert any(r.getMessage() == "Rerank ended: cancelled" for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


@pytest.mark.parametrize(("request_", "metadata", "code"), [
    (pb.RerankRequest(query="q", documents=[]), AUTH, "INVALID_ARGUMENT"),
    (pb.RerankRequest(query="q", documents=["a"]), (), "UNAUTHENTICATED"),
    (pb.RerankRequest(query="q", documents=["a"]), AUTH, "OK"),
], ids=["invalid", "unauthenticated", "ok"])
def test_each_outcome_is_counted(slow_worker, request_, metadata, code):
    before, timed = _count(slow_worker, "Rerank", code), _timed(slow_worker, "Rerank", code)
    with grpc.insecure_channel(slow_worker.address) as channel:
        try:
            _stub(channel).Rerank(request_, timeout=30, metadata=metadata)
        except grpc.RpcError as exc:
            assert exc.code().name == code
    assert _wait_for_count(slow_worker, "Rerank", code, before + 1) == before + 1
    # Refused before the handlers (no token), a call is counted but not timed.
    assert _timed(slow_worker, "Rerank", code) == timed + (code != "UNAUTHENTICATED")
