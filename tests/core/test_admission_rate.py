"""Admission that is right from the first request: a worker that has seen no traffic yet prices a
burst at the rate its warm-up measured, so what it admits completes and the rest is refused at once.

Outcomes are counted, never timed. The model's cost is made known and steady (a sleep per padded
token, on top of the tiny model), so "several times capacity" holds on a loaded machine too.
"""

from __future__ import annotations

import time
from collections import Counter

import grpc
from support.workers import worker_in_process

from crossrank.protos import pb, pb_grpc
from crossrank.worker.engine.admission import START_UP_BATCHES, start_up_length
from crossrank.worker.engine.runtime import CrossEncoderRuntime

SECONDS_PER_TOKEN = 400e-6  # about 90 pairs/s for the pairs below, padded to ~27 tokens
DEADLINE = 3.0
DOCS = [" ".join(["search model ranking document"] * 5)] * 20  # 20 pairs of about 25 tokens
BURST = 60  # 1,200 pairs: four times what the worker can score within one deadline


def slow_forward(monkeypatch) -> None:
    forward = CrossEncoderRuntime.forward

    def slowed(self, batch):
        time.sleep(SECONDS_PER_TOKEN * batch.arrays["input_ids"].size)
        return forward(self, batch)

    monkeypatch.setattr(CrossEncoderRuntime, "forward", slowed)


def test_a_burst_right_after_start_is_admitted_only_as_far_as_it_can_finish(tiny_cross_encoder, monkeypatch):
    slow_forward(monkeypatch)  # warm-up, which measures the start-up rate, pays it too
    with worker_in_process(tiny_cross_encoder, max_batch_pairs=8, max_batch_tokens=256) as server:
        batcher = server.engine._score_batcher
        assert batcher.seconds_per_pair is not None, "no start-up rate: the first burst would be admitted blind"
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.RerankerStub(channel)
            calls = [stub.Rerank.future(pb.RerankRequest(query="rag search", documents=DOCS), timeout=DEADLINE)
                     for _ in range(BURST)]
            outcomes: Counter[str] = Counter()
            for call in calls:
                try:
                    assert len(call.result().results) == len(DOCS)
                    outcomes["OK"] += 1
                except grpc.RpcError as exc:
                    outcomes[exc.code().name] += 1
        admitted = BURST - outcomes["RESOURCE_EXHAUSTED"]
        assert set(outcomes) <= {"OK", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"}, outcomes
        assert outcomes["OK"] > 0 and outcomes["RESOURCE_EXHAUSTED"] > 0, outcomes
        # Before any rate was measured, the whole burst was admitted and most of it then missed its deadline.
        # One late request is allowed: on a loaded 2-core machine one batch can take 8x its time.
        late = outcomes["DEADLINE_EXCEEDED"]
        assert late <= max(1, admitted // 20), f"admitted requests missed their deadline: {outcomes}"


def test_the_start_up_rate_is_measured_on_batches_full_by_both_limits():
    assert start_up_length(max_length=512, max_batch_tokens=4096, max_batch_pairs=32) == 128  # a CPU's defaults
    assert start_up_length(max_length=64, max_batch_tokens=4096, max_batch_pairs=32) == 64  # inputs cannot be longer
    assert START_UP_BATCHES >= 2  # at least one batch measured while another waits behind it


def test_an_idle_worker_tries_a_request_its_estimate_says_cannot_finish(tiny_cross_encoder, monkeypatch):
    slow_forward(monkeypatch)
    with worker_in_process(tiny_cross_encoder, max_batch_pairs=8, max_batch_tokens=256) as server:
        batcher = server.engine._score_batcher
        long = DOCS * 5  # 100 pairs, whose estimate is twice the deadline below
        deadline = batcher.estimated_wait(len(long)) / 2
        assert deadline >= 0.5  # a refusal comes back well within it, as RESOURCE_EXHAUSTED
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.RerankerStub(channel)
            busy = stub.Rerank.future(pb.RerankRequest(query="rag search", documents=DOCS * 20), timeout=60)
            time.sleep(0.2)  # queued: the next request has work ahead of it, and is refused
            try:
                stub.Rerank(pb.RerankRequest(query="rag search", documents=long), timeout=deadline)
                raise AssertionError("admitted with work ahead of it that its deadline cannot wait for")
            except grpc.RpcError as exc:
                assert exc.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            busy.result()
            try:  # alone it is tried, and may still miss its deadline; it is never refused at the door
                stub.Rerank(pb.RerankRequest(query="rag search", documents=long), timeout=deadline)
            except grpc.RpcError as exc:
                assert exc.code() is grpc.StatusCode.DEADLINE_EXCEEDED
