"""gRPC calls need the bearer token; health and reflection stay open for probes and grpcurl."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from support.credentials import TOKEN

from crossrank.client import AuthenticationError, CrossrankClient
from crossrank.protos import SERVICE_NAME

DOCS = ["paris is the capital of france", "the weather is cold"]


@pytest.mark.parametrize("token", [None, "wrong-token"], ids=["missing", "wrong"])
def test_calls_without_the_right_token_are_refused(token_worker, token):
    with CrossrankClient(token_worker.address, token=token, timeout=10) as client:
        with pytest.raises(AuthenticationError, match="bearer token"):
            client.rerank("capital of france", DOCS)
        with pytest.raises(AuthenticationError):
            client.info()
        with pytest.raises(AuthenticationError):
            list(client.stream([{"query": "capital of france", "documents": DOCS}]))


def test_the_right_token_works(token_worker):
    with CrossrankClient(token_worker.address, token=TOKEN, timeout=10) as client:
        assert len(client.rerank("capital of france", DOCS).results) == 2
        request = {"query": "capital of france", "documents": DOCS, "request_id": "s1"}
        responses = list(client.stream([request]))
        assert [r.request_id for r in responses] == ["s1"]


def test_health_is_open(token_worker):
    with grpc.insecure_channel(token_worker.address) as channel:
        request = health_pb2.HealthCheckRequest(service=SERVICE_NAME)
        response = health_pb2_grpc.HealthStub(channel).Check(request, timeout=10)
    assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_is_open(token_worker):
    with grpc.insecure_channel(token_worker.address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                            timeout=10)
        services = {s.name for reply in replies for s in reply.list_services_response.service}
    assert SERVICE_NAME in services
