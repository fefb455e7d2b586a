"""How the worker's threads share the CPU's cores: idle OpenMP threads sleep, they do not spin, and
the threads that tokenize and run the model stand back for the request path.

On a CPU the worker runs its tokenizer threads, its event loop and torch's OpenMP threads on
the same cores. OpenMP's default lets a thread that finishes a parallel region spin for a while
before it sleeps, which wins on a machine with cores to spare and loses when other threads
need those cores: on 2 cores the spinning took half of the worker's CPU time (docs/benchmarks.md,
"The host path"). PASSIVE makes them sleep at once. OpenMP reads the setting when the library
loads, so this runs before torch is imported; a value already in the environment wins.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading


def let_idle_threads_sleep() -> None:
    if "torch" in sys.modules:  # too late: OpenMP has read its settings
        return
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def stand_back(niceness: int) -> None:
    """Lower the calling thread's CPU priority by `niceness` (at most to 19).

    On a CPU, tokenizing and the model's forward passes keep every core busy while requests
    arrive; at the same priority, an event loop that refuses a request in 1 ms waits up to
    hundreds of ms for a core (docs/benchmarks.md, "The request path ahead of the model"). Linux
    keeps a nice value per thread, and threads started from this one (a pool's, OpenMP's team,
    the Rust tokenizer's) inherit it. Raising one's own niceness needs no privilege; where it is
    not supported this does nothing.
    """
    if niceness <= 0 or not hasattr(os, "setpriority"):
        return
    thread = threading.get_native_id()
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + niceness))
