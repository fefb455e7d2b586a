"""A warm worker freezes its start-up heap out of the collector's walks, and a stopped one thaws it."""

from __future__ import annotations

import gc

from support.workers import worker_in_process


def test_a_warm_worker_freezes_its_start_up_heap_and_a_stopped_one_thaws_it(tiny_cross_encoder):
    gc.unfreeze()
    with worker_in_process(tiny_cross_encoder) as server:
        assert server.engine.ready
        # The model's modules and tensors are in it: a full collection no longer walks them.
        assert gc.get_freeze_count() > 10_000
        young = len(gc.get_objects())
        assert young < gc.get_freeze_count()
    assert gc.get_freeze_count() == 0
