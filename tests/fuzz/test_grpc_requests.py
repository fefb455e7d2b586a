"""Hypothesis against the gRPC worker: any RerankRequest, and any bytes on the wire, get an answer or a
client error (INVALID_ARGUMENT, RESOURCE_EXHAUSTED, ...), never INTERNAL or UNKNOWN, and the worker goes on."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crossrank.protos import pb

SERVER_FAULTS = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Protobuf strings are UTF-8: a lone surrogate cannot even be put in a message (it can on the wire, below).
text = st.text(st.characters(exclude_categories=["Cs"]), max_size=300)
uint32 = st.integers(0, 2**32 - 1)

requests = st.builds(
    pb.RerankRequest,
    query=text,
    documents=st.lists(text, max_size=60),
    top_k=uint32,
    return_documents=st.booleans(),
    raw_scores=st.booleans(),
    long_document=st.integers(0, 5),  # 3 to 5 are values this worker does not know
    window_tokens=st.one_of(st.integers(0, 600), uint32),
    window_stride=st.one_of(st.integers(0, 600), uint32),
    request_id=text,
)


@st.composite
def wire_messages(draw) -> bytes:
    """Valid messages cut, with bytes flipped or inserted, or plain noise."""
    raw = draw(requests).SerializeToString()
    how = draw(st.sampled_from(["cut", "flip", "insert", "noise"]))
    if how == "noise" or not raw:
        return draw(st.binary(max_size=200))
    at = draw(st.integers(0, len(raw) - 1))
    if how == "cut":
        return raw[:at]
    if how == "flip":
        return raw[:at] + bytes([raw[at] ^ draw(st.integers(1, 255))]) + raw[at + 1:]
    return raw[:at] + draw(st.binary(min_size=1, max_size=8)) + raw[at:]


@pytest.fixture(scope="module")
def channel(fuzzed_worker) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(fuzzed_worker.address) as ch:
        yield ch


def _raw(channel: grpc.Channel, method: str):
    return channel.unary_unary(f"/crossrank.v1.Reranker/{method}", response_deserializer=pb.RerankResponse.FromString)


@FUZZ
@given(request=requests)
def test_any_rerank_request(channel, request):
    try:
        response = _raw(channel, "Rerank")(request.SerializeToString(), timeout=60)
    except grpc.RpcError as exc:
        assert exc.code() not in SERVER_FAULTS, exc.details()
    else:  # an answer ranks distinct documents of the request, as many as asked for
        indexes = [r.index for r in response.results]
        assert len(set(indexes)) == len(indexes) and all(0 <= i < len(request.documents) for i in indexes)
        assert len(indexes) == min(len(request.documents), request.top_k or len(request.documents))


@FUZZ
@given(raw=wire_messages())
def test_any_bytes_on_the_wire(channel, raw):
    try:
        _raw(channel, "Rerank")(raw, timeout=60)
    except grpc.RpcError as exc:
        assert exc.code() not in SERVER_FAULTS, exc.details()


@FUZZ
@given(messages=st.lists(st.one_of(requests.map(pb.RerankRequest.SerializeToString), wire_messages()),
                         min_size=1, max_size=6))
def test_any_stream(channel, messages):
    call = channel.stream_stream("/crossrank.v1.Reranker/RerankStream",
                                 response_deserializer=pb.RerankResponse.FromString)
    try:
        for response in call(iter(messages), timeout=60):
            if response.HasField("error"):
                assert response.error.code not in (c.value[0] for c in SERVER_FAULTS), response.error.message
    except grpc.RpcError as exc:
        assert exc.code() not in SERVER_FAULTS, exc.details()
