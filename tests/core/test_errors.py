"""Bad input gets INVALID_ARGUMENT with a message a person can act on; the worker keeps serving."""

import grpc
import pytest
from support.clients import CLIENT_KINDS, open_client
from support.workers import worker_settings

from crossrank.client import CrossrankClient, InvalidRequestError, NotServedError, UnavailableError
from crossrank.worker.server import create_server


@pytest.fixture(scope="module")
def strict_worker(tiny_cross_encoder):
    server = create_server(worker_settings(tiny_cross_encoder, max_documents_per_request=5,
                                           max_characters_per_request=200))
    assert server.wait_ready(60)
    yield server
    server.stop(0)


@pytest.fixture(scope="module", params=CLIENT_KINDS)
def client(request, strict_worker):
    with open_client(request.param, strict_worker.address, timeout=10) as c:
        yield c


@pytest.mark.parametrize(("query", "docs", "message"), [
    ("", ["a"], "query is empty"),
    ("   ", ["a"], "query is empty"),
    ("q", [], "no documents"),
    ("q", ["d"] * 6, "limit of 5"),
    ("q", ["x" * 150, "y" * 60], "more than this worker's limit of 200"),
])
def test_bad_input_is_invalid_argument(client, query, docs, message):
    with pytest.raises(InvalidRequestError, match=message) as info:
        client.rerank(query, docs)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_long_document_refused_only_when_asked(client):
    with pytest.raises(InvalidRequestError, match="exceed the model's 128 tokens"):
        client.rerank("q", ["向" * 150], long_document="error")
    assert len(client.rerank("q", ["word " * 30]).results) == 1


def test_bad_score_pairs(client):
    with pytest.raises(InvalidRequestError, match="no pairs"):
        client.score([])
    with pytest.raises(InvalidRequestError, match="empty query"):
        client.score([("", "doc")])


def test_embed_without_a_bi_encoder(client):
    with pytest.raises(NotServedError, match="no embedding model"):
        client.embed(["x"])


def test_a_stream_reports_bad_requests_and_goes_on(client):
    responses = {r.request_id: r for r in client.stream([
        {"query": "", "documents": ["a"], "request_id": "empty"},
        {"query": "q", "documents": ["a", "b"], "request_id": "good"},
        {"query": "q", "documents": ["d"] * 9, "request_id": "too-many"},
    ])}
    assert isinstance(responses["empty"].error, InvalidRequestError)
    assert isinstance(responses["too-many"].error, InvalidRequestError)
    assert responses["good"].error is None and len(responses["good"].results) == 2


def test_loading_worker_is_unavailable(tiny_cross_encoder):
    server = create_server(worker_settings(tiny_cross_encoder), load=False)
    try:
        # 3 s: time to connect on a loaded machine; the client retries UNAVAILABLE until then, then says why.
        with CrossrankClient(server.address, timeout=3) as c, pytest.raises(UnavailableError, match="loading"):
            c.rerank("q", ["d"])
    finally:
        server.stop(0)


def test_missing_gpu_is_a_clear_start_up_error():
    import torch

    from crossrank.worker.engine.device import resolve_device

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(RuntimeError, match="asked for a GPU but torch sees none"):
        resolve_device("cuda:0")


def test_invalid_settings_are_refused():
    from crossrank.worker.settings import WorkerSettings

    with pytest.raises(ValueError, match="dtype 'fp8'.*device 'tpu'"):
        WorkerSettings(dtype="fp8", device="tpu").validate()
