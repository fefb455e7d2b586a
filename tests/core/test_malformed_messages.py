"""Bytes that are not a valid message are the caller's error (INVALID_ARGUMENT), never INTERNAL."""

from __future__ import annotations

import grpc
import pytest

from crossrank.protos import pb

GOOD = pb.RerankRequest(query="capital of france", documents=["paris", "berlin"], request_id="good")
CUT_OFF = GOOD.SerializeToString()[:-3]
BAD_UTF8 = GOOD.SerializeToString().replace(b"paris", b"pa\xffis")
RERANK = "/crossrank.v1.Reranker/Rerank"


def _requests_total(worker, method: str, code: str) -> float:
    return worker.engine.metrics.registry.get_sample_value(
        "crossrank_requests_total", {"method": method, "code": code}) or 0.0


@pytest.mark.parametrize("raw", [CUT_OFF, BAD_UTF8, b"\xff" * 16], ids=["cut-off", "bad-utf8", "garbage"])
def test_a_malformed_rerank_is_invalid_argument(worker, raw):
    before = _requests_total(worker, "Rerank", "INVALID_ARGUMENT")
    with grpc.insecure_channel(worker.address) as channel:
        call = channel.unary_unary(RERANK, response_deserializer=pb.RerankResponse.FromString)
        with pytest.raises(grpc.RpcError) as err:
            call(raw, timeout=30)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    assert "not a valid protobuf message" in err.value.details()
    assert _requests_total(worker, "Rerank", "INVALID_ARGUMENT") == before + 1


def test_a_malformed_message_ends_a_stream_after_the_good_ones_are_answered(worker):
    requests = [pb.RerankRequest(query="q", documents=["a", "b"], request_id=f"r{i}").SerializeToString()
                for i in range(3)]
    with grpc.insecure_channel(worker.address) as channel:
        call = channel.stream_stream("/crossrank.v1.Reranker/RerankStream",
                                     response_deserializer=pb.RerankResponse.FromString)
        responses = call(iter([*requests, BAD_UTF8, requests[0]]), timeout=30)
        answered = []
        with pytest.raises(grpc.RpcError) as err:
            for response in responses:
                answered.append(response)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(r.request_id for r in answered) == ["r0", "r1", "r2"]
    assert all(len(r.results) == 2 and not r.HasField("error") for r in answered)
