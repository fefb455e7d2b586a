"""Priority in the batcher: the most urgent work forms each batch, less urgent work fills the room
left, one priority keeps its arrival order, and nothing ages (the starvation rule in batcher.py).

The stand-in model (support/batching.py) echoes each input's ident; `collate_gate` holds the
scheduler right after it formed a batch, so the test knows which batch is formed next.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.batching import EchoRuntime, finish_order, items, make

from crossrank.worker.engine.batcher import pick_batch, pick_by_priority

BULK = 10


@pytest.fixture
def runtime():
    return EchoRuntime()


def held(runtime, batcher):
    """Hold the scheduler on a first batch, so that whatever is queued next waits for one decision."""
    runtime.collate_gate.clear()
    blocker = batcher.submit(items([0], [1]))
    assert runtime.collating.wait(5)
    return blocker


def test_the_next_batch_holds_the_interactive_request_and_bulk_fills_the_rest(runtime):
    batcher = make(runtime, max_batch_tokens=10_000, max_batch_pairs=8, sort_window=1024)
    blocker = held(runtime, batcher)
    bulk = batcher.submit(items(range(100, 140), [4] * 40, priority=BULK))
    interactive = batcher.submit(items([7, 8, 9], [4, 4, 4]))
    runtime.collate_gate.set()
    assert interactive.result(timeout=10).tolist() == [7, 8, 9]
    assert bulk.result(timeout=10).tolist() == list(range(100, 140))
    blocker.result(timeout=10)
    batcher.stop()
    first = runtime.idents[1]
    assert {7, 8, 9} <= set(first), "the interactive request waited behind queued bulk work"
    assert len(first) == 8, "bulk work did not fill the room the interactive request left"


def test_one_priority_finishes_in_arrival_order_and_bulk_after(runtime):
    # Each request is one full batch: the interactive ones, queued after the bulk ones, finish first.
    batcher = make(runtime, max_batch_tokens=10_000, max_batch_pairs=8, sort_window=1024)
    blocker = held(runtime, batcher)
    order = [("b1", BULK), ("i1", 0), ("b2", BULK), ("i2", 0), ("b3", BULK), ("i3", -5)]
    named = [(name, items([k * 10 + 1] * 8, [4] * 8, priority=priority)) for k, (name, priority) in enumerate(order)]
    finished = finish_order(batcher, named, runtime.collate_gate)
    blocker.result(timeout=10)
    batcher.stop()
    assert finished == ["i3", "i1", "i2", "b1", "b2", "b3"]


def test_no_aging_bulk_waits_while_urgent_work_fills_every_batch(runtime):
    # The starvation rule: none is prevented. A bulk input queued first runs only in the first batch
    # with room, however long it has waited.
    batcher = make(runtime, max_batch_tokens=10_000, max_batch_pairs=4, sort_window=1024)
    blocker = held(runtime, batcher)
    bulk = batcher.submit(items([99], [4], priority=BULK))
    urgent = [batcher.submit(items([k * 10 + j for j in range(4)], [4] * 4)) for k in range(1, 4)]
    last = batcher.submit(items([50, 51], [4, 4]))
    runtime.collate_gate.set()
    for ticket in [*urgent, last, bulk]:
        ticket.result(timeout=10)
    blocker.result(timeout=10)
    batcher.stop()
    assert [sorted(b) for b in runtime.idents[1:]] == [
        [10, 11, 12, 13],
        [20, 21, 22, 23],
        [30, 31, 32, 33],
        [50, 51, 99],
    ]


def test_admission_figures_count_only_work_as_urgent_or_more(runtime):
    batcher = make(runtime, max_batch_pairs=1)
    blocker = held(runtime, batcher)
    batcher.submit(items(range(100, 130), [4] * 30, priority=BULK))
    batcher.submit(items([1, 2], [4, 4]))
    assert batcher.pending_pairs(0) == 2
    assert batcher.pending_pairs(BULK) == batcher.pending_pairs() == 32
    assert batcher.pending_by_priority() == {0: 2, BULK: 30}
    batcher.seconds_per_pair = 1.0  # as if measured
    assert batcher.estimated_wait(3, priority=0) == 1 + 2 + 3  # the blocker in flight, 2 queued, 3 more
    assert batcher.estimated_wait(3, priority=BULK) == 1 + 32 + 3
    runtime.collate_gate.set()
    blocker.result(timeout=10)
    batcher.stop()


@given(lengths=st.lists(st.integers(1, 64), min_size=1, max_size=60), data=st.data())
def test_less_urgent_inputs_only_fill_and_the_budgets_hold(lengths, data):
    levels = data.draw(st.lists(st.sampled_from([0, 3, BULK]), min_size=len(lengths), max_size=len(lengths)))
    head = data.draw(st.integers(1, len(lengths)))
    levels[:head] = [min(levels)] * head  # the head request is at the most urgent level
    lengths_a, levels_a = np.asarray(lengths), np.asarray(levels)
    max_pairs = data.draw(st.integers(1, 16))
    picked = pick_by_priority(lengths_a, levels_a, head, max_tokens=64, max_pairs=max_pairs)
    assert len(set(picked.tolist())) == len(picked) <= max_pairs
    assert lengths_a[picked].max() * len(picked) <= 64
    # The most urgent level's share is exactly what it would get alone: filling never displaces it.
    urgent = np.flatnonzero(levels_a == min(levels))
    order = urgent[np.argsort(lengths_a[urgent], kind="stable")]
    anchor = int(np.flatnonzero(order < head)[-1])
    alone = order[pick_batch(lengths_a[order].tolist(), anchor, 64, max_pairs)]
    assert set(picked[levels_a[picked] == min(levels)].tolist()) == set(alone.tolist())
