"""A served worker's CPU split by what its threads do, read from /proc (Linux only).

The worker names its threads for the OS (`worker/thread_names.py`), so the CPU time of each
thread of its process tree can be summed by role without a profiler. Native pools take the
name of the thread that started them: the Rust tokenizer's pool is started by whichever thread
first tokenizes in parallel (a tokenizer thread, or `model-loader` during warm-up; that thread has
nothing else to do once the model is loaded), so both names count as tokenizing; OpenMP's teams
count with the forward threads that start them.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from pathlib import Path

from crossrank.worker.bench.process import process_tree

# Roles in the order the report prints them; the first whose marker a thread's name holds is its role.
ROLES = (
    ("forward", ("forward",)),
    ("tokenize", ("tokenize", "model-loader")),
    ("schedule", ("schedule",)),
    ("event loop", ("grpc-aio", "core-client", "core-link")),
    ("post", ("post",)),
)


def role_of(thread_name: str) -> str:
    return next((role for role, markers in ROLES if any(m in thread_name for m in markers)), "other")


def cpu_by_role(pid: int) -> Counter[str]:
    """CPU seconds so far of every thread of `pid` and its descendants, summed by `role_of` their name;
    empty where /proc is not there."""
    seconds: Counter[str] = Counter()
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for process in process_tree(pid):
        tasks = Path(f"/proc/{process.pid}/task")
        with contextlib.suppress(OSError):
            for task in tasks.iterdir():
                with contextlib.suppress(OSError):  # a thread that ended meanwhile
                    name = (task / "comm").read_text().strip()
                    fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                    seconds[role_of(name)] += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return seconds


def ms_per_pair(before: Counter[str], after: Counter[str], pairs: int) -> dict[str, float]:
    """Each role's CPU ms a pair between two readings, in ROLES' order, then `other`."""
    order = [role for role, _ in ROLES] + ["other"]
    return {role: round((after[role] - before[role]) * 1e3 / pairs, 4) for role in order if role in after}
