"""The worker lets idle OpenMP threads sleep unless the environment says otherwise, before torch loads, and on a
CPU its model threads stand back for the threads that take and answer requests."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from crossrank.worker.settings import WorkerSettings

PROBE = ("from crossrank.worker.cpu_threads import let_idle_threads_sleep; let_idle_threads_sleep(); "
         "import os, torch; print(os.environ.get('OMP_WAIT_POLICY', '-'))")


@pytest.mark.parametrize(("given", "expected"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_the_wait_policy_is_passive_unless_set(given, expected):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given:
        env["OMP_WAIT_POLICY"] = given
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [expected]


def test_too_late_once_torch_is_loaded():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    late = "import torch; " + PROBE
    out = subprocess.run([sys.executable, "-c", late], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["-"]  # left alone: setting it now would claim an effect it cannot have


def _nice_of(thread: threading.Thread) -> int:
    return os.getpriority(os.PRIO_PROCESS, thread.native_id)


def test_on_a_cpu_the_compute_threads_stand_back_for_the_request_path(worker):
    """Tokenizer and batcher threads run at a higher nice value than the thread that started the worker (whose
    event loop and gRPC threads take and answer requests)."""
    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    threads = {t.name: t for t in threading.enumerate()}
    compute = [t for name, t in threads.items() if name.startswith("tokenize-")
               or name.endswith(("-schedule", "-forward", "-post"))]
    assert len(compute) >= 4, sorted(threads)
    assert {_nice_of(t) for t in compute} == {min(19, own + WorkerSettings().compute_niceness)}
    assert _nice_of(threading.main_thread()) == own


@pytest.mark.parametrize("niceness", [-1, 20])
def test_a_niceness_out_of_range_is_refused(niceness):
    with pytest.raises(ValueError, match="compute_niceness"):
        WorkerSettings(model="m", compute_niceness=niceness).validate()
