"""The worker lets idle OpenMP threads sleep unless the environment says otherwise, before torch loads."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

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
