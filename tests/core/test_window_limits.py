"""Window mode's limits are checked from the text's length, before tokenizing, as INVALID_ARGUMENT."""

from __future__ import annotations

import grpc
import pytest

from crossrank.protos import pb, pb_grpc

WINDOW = pb.LONG_DOCUMENT_WINDOW


def _rerank(worker, **fields) -> pb.RerankResponse:
    with grpc.insecure_channel(worker.address) as channel:
        return pb_grpc.RerankerStub(channel).Rerank(pb.RerankRequest(query="q", **fields), timeout=60)


def test_a_tiny_window_is_refused_with_the_minimum(worker):
    with pytest.raises(grpc.RpcError) as err:
        _rerank(worker, documents=["a long text " * 100], long_document=WINDOW, window_tokens=1)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "window_tokens 1 is below the minimum of 32" in err.value.details()


def test_windows_that_could_never_fit_the_queue_are_refused_before_tokenizing(worker, monkeypatch):
    encoded = []
    monkeypatch.setattr(worker.engine.pair_tokenizer, "encode", lambda *a, **k: encoded.append(a) or [])
    document = "word " * 390_000  # about 1.9M characters
    with pytest.raises(grpc.RpcError) as err:
        _rerank(worker, documents=[document], long_document=WINDOW, window_tokens=32, window_stride=1)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    details = err.value.details()
    assert "windows" in details and "raise window_stride (now 1)" in details and "TRUNCATE" in details
    assert not encoded, "the document was tokenized before it was refused"


def test_a_long_document_that_fits_is_scored_in_windows(worker):
    response = _rerank(worker, documents=["paris is the capital of france. " * 200, "berlin"],
                       long_document=WINDOW, window_tokens=64, window_stride=32)
    assert len(response.results) == 2 and response.usage.pairs > 2


def test_a_stream_refuses_the_request_and_goes_on(worker):
    requests = [pb.RerankRequest(query="q", documents=["x " * 100], long_document=WINDOW, window_tokens=4,
                                 request_id="tiny"),
                pb.RerankRequest(query="q", documents=["a", "b"], request_id="fine")]
    with grpc.insecure_channel(worker.address) as channel:
        answers = {r.request_id: r for r in pb_grpc.RerankerStub(channel).RerankStream(iter(requests), timeout=60)}
    assert answers["tiny"].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "minimum" in answers["tiny"].error.message
    assert len(answers["fine"].results) == 2
