"""How the worker's threads share the CPU's cores: idle OpenMP threads sleep, they do not spin.

On a CPU the worker runs its tokenizer threads, its event loop and torch's OpenMP threads on
the same cores. OpenMP's default lets a thread that finishes a parallel region spin for a while
before it sleeps, which wins on a machine with cores to spare and loses when other threads
need those cores: on 2 cores the spinning took half of the worker's CPU time (docs/benchmarks.md,
"The host path"). PASSIVE makes them sleep at once. OpenMP reads the setting when the library
loads, so this runs before torch is imported; a value already in the environment wins.
"""

from __future__ import annotations

import os
import sys


def let_idle_threads_sleep() -> None:
    if "torch" in sys.modules:  # too late: OpenMP has read its settings
        return
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
