"""`--frontends`: a number of processes, or auto by the cores and the device."""

from __future__ import annotations

import os

import pytest
from support.workers import serving_worker

from crossrank.common.settings import SettingsError
from crossrank.worker.engine_core.sizing import MAX_GPU_FRONTENDS, auto_frontends
from crossrank.worker.settings import WorkerSettings


@pytest.mark.parametrize(("on_gpu", "cores", "count"), [
    (True, 16, MAX_GPU_FRONTENDS), (True, 64, MAX_GPU_FRONTENDS), (True, 4, 2), (True, 1, 1),
    (False, 2, 0), (False, 1, 0), (False, 16, 0),
])
def test_auto_picks_by_the_device_and_the_cores(on_gpu, cores, count):
    chosen, why = auto_frontends(on_gpu, cores)
    assert chosen == count and f"{cores} cores" in why


@pytest.mark.parametrize("value", ["-1", "two", "1.5", ""])
def test_anything_but_a_count_or_auto_is_refused_in_one_line(value):
    with pytest.raises(SettingsError, match="frontends .* is not a number of processes"):
        WorkerSettings(frontends=value).validate()


def test_counts_and_auto_are_accepted():
    assert WorkerSettings(frontends="3").validate().frontend_count == 3
    assert WorkerSettings().frontend_count == 0
    WorkerSettings(frontends="auto").validate()


@pytest.mark.slow
def test_serve_resolves_auto_and_says_why(tiny_cross_encoder):
    with serving_worker(tiny_cross_encoder, None, "--frontends", "auto") as worker:
        log = worker.output()
    count, _ = auto_frontends(False, len(os.sched_getaffinity(0)))
    assert f"--frontends auto: {count} (a CPU with" in log
