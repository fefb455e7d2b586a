"""The batcher's logic, with a deterministic stand-in model: budgets, order, cancellation, deadlines.

The stand-in (support/batching.py) returns each input's first token id, so every output names the
input it came from.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.batching import EchoRuntime, finish_order, items, make

from crossrank.worker.engine.batcher import pick_batch
from crossrank.worker.errors import CancelledError, DeadlineError


@pytest.fixture
def runtime():
    return EchoRuntime()


@given(lengths=st.lists(st.integers(1, 64), min_size=1, max_size=60), data=st.data())
def test_pick_batch_respects_budgets_and_keeps_the_oldest(lengths, data):
    lengths = sorted(lengths)
    oldest = data.draw(st.integers(0, len(lengths) - 1))
    max_pairs = data.draw(st.integers(1, 16))
    picked = pick_batch(lengths, oldest, max_tokens=64, max_pairs=max_pairs)
    assert oldest in picked
    assert len(set(picked)) == len(picked) <= max_pairs
    assert max(lengths[i] for i in picked) * len(picked) <= 64


def test_batches_respect_token_and_pair_budgets(runtime):
    batcher = make(runtime, max_batch_tokens=64, max_batch_pairs=4)
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 33, size=200).tolist()
    ticket = batcher.submit(items(range(200), lengths))
    assert ticket.result(timeout=10).tolist() == list(range(200))
    batcher.stop()
    assert sum(map(len, runtime.batches)) == 200
    for batch in runtime.batches:
        assert len(batch) <= 4
        assert max(batch) * len(batch) <= 64


def test_similar_lengths_share_batches(runtime):
    batcher = make(runtime, max_batch_tokens=10_000, max_batch_pairs=4, sort_window=64)
    runtime.gate.clear()  # hold the runner so that all inputs are pending when batches form
    blocker = batcher.submit(items([9], [1]))
    runtime.entered.wait(5)
    lengths = [5, 50, 6, 51, 7, 52, 8, 53]
    ticket = batcher.submit(items(range(8), lengths))
    runtime.gate.set()
    ticket.result(timeout=10)
    blocker.result(timeout=10)
    batcher.stop()
    formed = [sorted(b) for b in runtime.batches[1:]]
    assert sorted(formed) == [[5, 6, 7, 8], [50, 51, 52, 53]]


def test_interleaved_tickets_get_their_own_outputs_in_order(runtime):
    batcher = make(runtime, max_batch_tokens=128, max_batch_pairs=8)
    rng = np.random.default_rng(1)
    tickets = []

    def submit(k):
        n = int(rng.integers(1, 30))
        idents = [k * 1000 + i for i in range(n)]
        tickets.append((batcher.submit(items(idents, rng.integers(1, 17, size=n).tolist())), idents))

    threads = [threading.Thread(target=submit, args=(k,)) for k in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for ticket, idents in tickets:
        assert ticket.result(timeout=10).tolist() == idents
    batcher.stop()


def test_cancelled_work_is_never_computed(runtime):
    batcher = make(runtime, max_batch_tokens=64, max_batch_pairs=2)
    runtime.gate.clear()
    first = batcher.submit(items([1], [4]))
    runtime.entered.wait(5)  # the runner is inside forward; everything else queues
    doomed = batcher.submit(items(range(100, 140), [4] * 40))
    kept = batcher.submit(items([7, 8], [4, 4]))
    doomed.cancel()
    runtime.gate.set()
    assert kept.result(timeout=10).tolist() == [7, 8]
    assert first.result(timeout=10).tolist() == [1]
    with pytest.raises(CancelledError):
        doomed.result(timeout=1)
    batcher.stop()
    computed = sum(map(len, runtime.batches))
    # At most one batch of the cancelled ticket was formed before the cancel.
    assert computed <= 1 + 2 + 2
    assert doomed.outputs is None or not doomed.outputs[2:].any()


def test_a_failing_batch_fails_its_tickets_not_the_batcher():
    class Flaky(EchoRuntime):
        def forward(self, batch):
            if any(ident == 666 for ident, _ in batch):
                raise RuntimeError("boom")
            return super().forward(batch)

    batcher = make(Flaky(), max_batch_pairs=1)
    bad = batcher.submit(items([666], [3]))
    with pytest.raises(RuntimeError, match="inference failed"):
        bad.result(timeout=10)
    assert batcher.submit(items([5], [3])).result(timeout=10).tolist() == [5]
    batcher.stop()


def test_requests_complete_in_arrival_order(runtime):
    # Ten requests of 40 inputs each, queued together: each finishes before the next one's inputs run,
    # where a batch mixing every request's inputs would have them all finish together at the end.
    batcher = make(runtime, max_batch_tokens=10_000, max_batch_pairs=8, sort_window=1024)
    runtime.gate.clear()
    blocker = batcher.submit(items([0], [1]))
    runtime.entered.wait(5)
    named = [(k, items([k + 1] * 40, np.random.default_rng(k).integers(1, 60, size=40).tolist())) for k in range(10)]
    finished = finish_order(batcher, named, runtime.gate)
    blocker.result(timeout=10)
    batcher.stop()
    assert finished == list(range(10))
    assert all(len(set(batch)) <= 2 for batch in runtime.idents[1:]), "a batch draws from the head requests only"


def test_a_request_past_its_deadline_is_dropped_before_compute(runtime):
    batcher = make(runtime, max_batch_pairs=1)
    runtime.gate.clear()
    first = batcher.submit(items([1], [4]))
    runtime.entered.wait(5)
    late = batcher.submit(items(range(10, 20), [4] * 10, deadline=0.0))  # long past
    kept = batcher.submit(items([7], [4]))
    runtime.gate.set()
    assert kept.result(timeout=10).tolist() == [7] and first.result(timeout=10).tolist() == [1]
    with pytest.raises(DeadlineError, match="dropped before compute"):
        late.result(timeout=1)
    batcher.stop()
    assert sum(map(len, runtime.batches)) == 2  # first and kept; none of the late request's inputs


def test_a_request_that_cannot_make_its_deadline_is_dropped(runtime):
    import time

    batcher = make(runtime, max_batch_pairs=1)
    batcher.seconds_per_pair = 1.0  # as if measured: one input a second
    runtime.gate.clear()
    first = batcher.submit(items([1], [4]))
    runtime.entered.wait(5)
    hopeless = batcher.submit(items(range(10, 20), [4] * 10, deadline=time.perf_counter() + 5))  # needs 10 s
    runtime.gate.set()
    with pytest.raises(DeadlineError, match="would pass"):
        hopeless.result(timeout=5)
    assert first.result(timeout=10).tolist() == [1]
    batcher.stop()


def test_an_idle_gap_after_a_cancelled_backlog_is_not_priced_as_compute(runtime):
    """A backlog that vanishes (cancelled) leaves the worker idle; the next batches' rate is their own,
    not the idle time since the backlog's last batch (which once priced later requests out of their deadline)."""
    import time

    batcher = make(runtime, max_batch_tokens=64, max_batch_pairs=4)
    runtime.gate.clear()
    doomed = batcher.submit(items(range(40), [4] * 40))  # batches formed with work queued behind them
    runtime.entered.wait(5)
    doomed.cancel()
    runtime.gate.set()
    with pytest.raises(CancelledError):
        doomed.result(timeout=5)
    time.sleep(0.5)  # idle
    after = batcher.submit(items(range(100, 112), [4] * 12))  # 3 batches: within the rate's window
    assert after.result(timeout=10).tolist() == list(range(100, 112))
    batcher.stop()
    assert batcher.seconds_per_pair < 0.005, "the idle gap was counted as the next batch's cost"


def test_queue_depth_is_true_at_once_after_a_cancel(runtime):
    batcher = make(runtime, max_batch_pairs=1)
    runtime.gate.clear()
    first = batcher.submit(items([1], [4]))
    runtime.entered.wait(5)
    doomed = batcher.submit(items(range(10, 40), [4] * 30))
    assert batcher.pending_pairs() >= 25  # a few may already be collated ahead of the forward pass
    doomed.cancel()
    assert batcher.pending_pairs() == 0
    runtime.gate.set()
    first.result(timeout=10)
    batcher.stop()
