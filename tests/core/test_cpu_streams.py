"""CPU streams (`cpu_streams.py`): forward passes side by side on a CPU, each on a share of the cores,
and a pass that is the worker's only work on all of them."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from support.batching import EchoRuntime, items, make

from crossrank.worker.engine.cpu_streams import CpuStreams, auto_count
from crossrank.worker.settings import SettingsError, WorkerSettings


class Recording(CpuStreams):
    """Real streams that also note each pass's (alone, threads)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.passes: list[tuple[bool, int]] = []

    def before_forward(self, alone: bool) -> int:
        threads = super().before_forward(alone)
        self.passes.append((alone, threads))
        return threads


class Meeting(EchoRuntime):
    """A forward pass that returns only once `meet` passes are inside forward at the same time."""

    def __init__(self, meet: int):
        super().__init__()
        self.barrier = threading.Barrier(meet, timeout=5)

    def forward(self, batch):
        self.barrier.wait()
        return super().forward(batch)


def test_two_streams_run_two_passes_at_once():
    runtime = Meeting(2)
    streams = Recording(2, cores=2)
    batcher = make(runtime, max_batch_tokens=64, max_batch_pairs=2, streams=streams)
    ticket = batcher.submit(items(range(4), [3] * 4))  # two batches, each waiting for the other
    assert sorted(ticket.result(timeout=10).tolist()) == [0, 1, 2, 3]
    batcher.stop()
    assert len(runtime.batches) == 2
    assert (False, 1) in streams.passes  # at least one pass had company: one thread of the two


def test_one_stream_runs_passes_one_at_a_time():
    runtime = Meeting(2)
    batcher = make(runtime, max_batch_tokens=64, max_batch_pairs=2)
    ticket = batcher.submit(items(range(4), [3] * 4))
    with pytest.raises(Exception, match="inference failed: BrokenBarrierError"):
        ticket.result(timeout=15)
    batcher.stop()


def test_a_pass_that_is_the_only_work_gets_every_core():
    streams = Recording(2, cores=2)
    batcher = make(EchoRuntime(), streams=streams)
    assert batcher.submit(items([7], [3])).result(timeout=10).tolist() == [7]
    batcher.stop()
    assert streams.passes == [(True, 2)]


def test_work_elsewhere_keeps_a_lone_pass_on_its_share():
    streams = Recording(2, cores=2, busy_elsewhere=lambda: True)  # say, requests being tokenized
    batcher = make(EchoRuntime(), streams=streams)
    batcher.submit(items([7], [3])).result(timeout=10)
    batcher.stop()
    assert streams.passes == [(True, 1)]


def test_the_count_is_two_where_there_are_two_cores_and_never_above_the_cores():
    assert [auto_count(c) for c in (1, 2, 16)] == [1, 2, 2]
    assert CpuStreams(4, cores=2).count == 2
    assert CpuStreams(2, cores=8).share == 4


def test_the_setting_refuses_a_negative_count():
    with pytest.raises(SettingsError, match="cpu_streams"):
        WorkerSettings(cpu_streams=-1).validate()


@pytest.mark.parametrize("count", [1, 2])
def test_served_scores_equal_predict_whatever_the_streams(tiny_cross_encoder, oracle, count):
    """Many batches of 4, scored side by side or one at a time, each score where predict puts it."""
    from support.clients import open_client
    from support.workers import worker_in_process

    query = "what is the capital of france"
    documents = [f"document {i} " + "paris is the capital " * (i % 7) for i in range(40)]
    with worker_in_process(tiny_cross_encoder, cpu_streams=count, max_batch_pairs=4) as server:
        streams = server.engine.queue("score").streams
        assert (streams.count if streams else 1) == count
        with open_client("sync", server.address, timeout=30) as client:
            got = {r.index: r.score for r in client.rerank(query, documents, raw_scores=True).results}
    expected = oracle.predict([(query, d) for d in documents], activation_fn=torch.nn.Identity())
    np.testing.assert_allclose([got[i] for i in range(len(documents))], expected, atol=1e-4)
