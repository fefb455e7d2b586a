"""Admission happens as a request arrives, not when a handler thread frees up: with one gRPC thread
and many calls waiting for the model, a request that overflows the queue is refused at once. The
queue rule is one rule, applied again to windows once they are counted."""

from __future__ import annotations

import threading
import time

import grpc
import pytest
from support.workers import worker_in_process, worker_settings

from crossrank.protos import pb, pb_grpc
from crossrank.worker.engine import LongDocument, RerankQuery
from crossrank.worker.engine.admission import Admission
from crossrank.worker.errors import OverloadedError
from crossrank.worker.settings import WorkerSettings


def test_a_request_over_the_queue_is_refused_while_others_wait(tiny_cross_encoder):
    from crossrank.worker.server import create_server

    server = create_server(worker_settings(tiny_cross_encoder, grpc_threads=1, max_queue_pairs=200,
                                           max_batch_pairs=2, max_batch_tokens=256))
    assert server.wait_ready(60)
    # Hold the model until the refusal is seen: the tiny model would otherwise score the queued
    # calls faster than this test can fill the queue.
    held = threading.Event()
    runtime = server.engine._score_batcher.runtime
    forward = runtime.forward
    runtime.forward = lambda features: held.wait(60) and forward(features)
    try:
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.RerankerStub(channel)
            docs = [f"document number {i} " * 8 for i in range(20)]
            waiting = [stub.Rerank.future(pb.RerankRequest(query="q", documents=docs))
                       for _ in range(8)]  # 160 pairs, in far more calls than the one thread
            for _ in range(200):  # until the engine holds them (its admission check has no side effect)
                try:
                    server.engine.admit(len(docs) * 3)
                except OverloadedError:
                    break
                time.sleep(0.05)
            with pytest.raises(grpc.RpcError) as err:
                stub.Rerank(pb.RerankRequest(query="q", documents=docs * 3), timeout=120)
            still_waiting = sum(not f.done() for f in waiting)
            assert err.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED, err.value.details()
            assert "queue full" in err.value.details()
            assert still_waiting > 0, "the refusal came only after the queued calls were done"
            held.set()
            assert all(len(f.result().results) == 20 for f in waiting)
    finally:
        held.set()
        server.stop(0)


def test_the_queue_rule_counts_what_waits_and_what_comes():
    admission = Admission(WorkerSettings(max_queue_pairs=10))
    admission.check_room(5, 5)  # exactly full fits
    with pytest.raises(OverloadedError, match="queue full: 6 pairs waiting, this request adds 5, limit 10"):
        admission.check_room(6, 5)


def test_windows_past_the_queue_are_refused_once_counted(tiny_cross_encoder):
    # 1,200 one-character words: the estimate from the text's length (6 characters a token) says about
    # 13 windows of 32 tokens, which fit a queue of 20; the tokenizer then counts about 38.
    with worker_in_process(tiny_cross_encoder, max_queue_pairs=20) as server:
        query = RerankQuery("q", ["a " * 1200], long_document=LongDocument.WINDOW, window_tokens=32,
                            window_stride=32)
        with pytest.raises(OverloadedError, match="queue full: .* limit 20"):
            server.engine.rerank(query, timeout=60)
        assert len(server.engine.rerank(RerankQuery("q", ["a " * 100, "b"]), timeout=60).results) == 2


def test_a_call_over_the_limit_is_refused_on_its_count_before_its_documents_are_read(tiny_cross_encoder):
    # Admission comes before the documents are copied out of the message (servicer.py): a call over
    # the queue is RESOURCE_EXHAUSTED even where its documents are invalid, and the same documents in
    # a call that fits get the INVALID_ARGUMENT that names them.
    with (worker_in_process(tiny_cross_encoder, max_queue_pairs=5, max_characters_per_request=100) as server,
          grpc.insecure_channel(server.address) as channel):
        stub = pb_grpc.RerankerStub(channel)
        for documents, code, says in ((["x" * 60] * 6, grpc.StatusCode.RESOURCE_EXHAUSTED, "queue full"),
                                      (["x" * 60] * 2, grpc.StatusCode.INVALID_ARGUMENT, "characters")):
            with pytest.raises(grpc.RpcError) as err:
                stub.Rerank(pb.RerankRequest(query="q", documents=documents), timeout=60)
            assert err.value.code() is code and says in err.value.details(), err.value.details()
            with pytest.raises(grpc.RpcError) as err:
                stub.Score(pb.ScoreRequest(pairs=[pb.ScorePair(query="q", document=d) for d in documents]),
                           timeout=60)
            assert err.value.code() is code and says in err.value.details(), err.value.details()
