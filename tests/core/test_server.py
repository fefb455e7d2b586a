"""The server as a whole: health, reflection, streams, cancellation, and clients that wait."""

from __future__ import annotations

import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from support.clients import CLIENT_KINDS, open_client
from support.workers import worker_settings

from crossrank.client import AsyncCrossrankClient, CrossrankClient, DeadlineExceededError, RerankRequest
from crossrank.common.net import free_port
from crossrank.worker.server import create_server


def _health(address: str, service: str = "") -> int:
    with grpc.insecure_channel(address) as channel:
        return health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=5).status


def test_health_turns_serving_after_warm_up(tiny_cross_encoder):
    server = create_server(worker_settings(tiny_cross_encoder), load=False)
    try:
        for service in ("", "crossrank.v1.Reranker"):
            assert _health(server.address, service) == health_pb2.HealthCheckResponse.NOT_SERVING
        assert server.wait_ready(60)
        for service in ("", "crossrank.v1.Reranker"):
            assert _health(server.address, service) == health_pb2.HealthCheckResponse.SERVING
    finally:
        server.stop(0)


def test_a_port_in_use_is_an_error_not_shared(tiny_cross_encoder):
    """gRPC binds with SO_REUSEPORT by default: a second worker would silently take half the connections."""
    first = create_server(worker_settings(tiny_cross_encoder), load=False)
    try:
        with pytest.raises(RuntimeError, match=f"could not bind 127.0.0.1:{first.port}"):
            create_server(worker_settings(tiny_cross_encoder, port=first.port), load=False)
    finally:
        first.stop(0)


def test_reflection_lists_the_service(worker):
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    with grpc.insecure_channel(worker.address) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        services = set(database.get_services())
        assert {"crossrank.v1.Reranker", "grpc.health.v1.Health"} <= services
        assert database.FindFileContainingSymbol("crossrank.v1.Reranker").package == "crossrank.v1"


@pytest.mark.parametrize("kind", CLIENT_KINDS)
def test_stream_answers_100_interleaved_requests_by_id(worker, kind):
    requests = [RerankRequest(f"query {i}", [f"doc {j} of {i}" for j in range(1 + (i * 7) % 23)],
                              request_id=f"r{i}", top_k=3) for i in range(100)]
    with open_client(kind, worker.address) as client:
        responses = list(client.stream(iter(requests)))
        assert sorted(r.request_id for r in responses) == sorted(r.request_id for r in requests)
        by_id = {r.request_id: r for r in responses}
        for request in requests[::17]:
            alone = client.rerank(request.query, request.documents, top_k=3)
            got = by_id[request.request_id]
            assert got.error is None
            assert [r.index for r in got.results] == [r.index for r in alone.results]
            assert [r.score for r in got.results] == pytest.approx([r.score for r in alone.results], abs=1e-5)


def test_async_client_reranks_and_streams(worker):
    import asyncio

    async def run():
        async with AsyncCrossrankClient(worker.address) as client:
            single = await client.rerank("what is rag", ["rag is retrieval", "paris"], return_documents=True)
            streamed = [r async for r in client.stream([{"query": "q", "documents": ["a", "b"], "request_id": "s"}])]
            info = await client.info()
            return single, streamed, info

    single, streamed, info = asyncio.run(run())
    assert {r.index for r in single.results} == {0, 1} and single.results[0].document
    assert streamed[0].request_id == "s" and len(streamed[0].results) == 2
    assert info.model == worker.settings.model


def test_a_cancelled_call_drops_its_work(tiny_cross_encoder):
    # Small batches make a big request take many forward passes, so a short deadline ends it midway.
    server = create_server(worker_settings(tiny_cross_encoder, max_batch_pairs=2, max_batch_tokens=256))
    assert server.wait_ready(60)
    observer = server.engine.metrics.observer(server.settings.model)
    # As if measured much faster than it is: admission, which prices 1,000 pairs at the start-up rate and
    # refuses them a 50 ms deadline, lets the request in, and the deadline then ends it midway.
    server.engine._score_batcher.seconds_per_pair = 1e-6
    try:
        docs = [f"document number {i} " * 8 for i in range(1000)]
        with CrossrankClient(server.address) as client:
            client.info()  # connected first, so the short deadline is spent on the request alone
            with pytest.raises(DeadlineExceededError):
                client.rerank("query", docs, timeout=0.05)
        for _ in range(100):  # let the engine finish tokenizing, notice and drain (slow on a busy machine)
            if observer.value("dropped_pairs"):
                break
            time.sleep(0.1)
        scored = observer.value("pairs")
        dropped = observer.value("dropped_pairs")
        assert dropped > 0, "the cancelled request's pairs should be dropped"
        assert scored < 1000 + 3, f"{scored} pairs scored: the cancelled request ran to the end"
        with CrossrankClient(server.address) as client:  # the worker still serves
            assert len(client.rerank("q", ["a"]).results) == 1
    finally:
        server.stop(0)


def test_client_retries_until_a_late_worker_is_up(tiny_cross_encoder):
    port = free_port()
    result: dict = {}

    def call():
        with CrossrankClient(f"127.0.0.1:{port}", timeout=60) as client:
            result["response"] = client.rerank("q", ["a", "b"])

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(1.5)  # the first attempts find nothing listening
    assert caller.is_alive()
    server = create_server(worker_settings(tiny_cross_encoder, port=port))
    try:
        caller.join(60)
        assert len(result["response"].results) == 2
    finally:
        server.stop(0)
