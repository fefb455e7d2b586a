"""The start-up heap, kept out of the garbage collector's walks once the worker is warm.

A loaded worker holds about half a million objects the collector tracks (torch, transformers, the
tokenizers, gRPC), nearly all alive until it exits. Every collection of the oldest generation walks
them all: on a 2-core CPU that took 210-261 ms, with every thread that needs the GIL stopped
meanwhile, and under overload those pauses were the slowest refusals' wait (docs/benchmarks.md,
"Refusals under overload"). `gc.freeze()` moves what is alive now into a permanent generation that
collections skip, as vLLM's servers do after start-up (`freeze_gc_heap` in vllm/utils/gc_utils.py).
Garbage made afterwards is collected as before.
"""

from __future__ import annotations

import gc
import logging
import time

log = logging.getLogger(__name__)


def freeze_startup_heap() -> int:
    """Collect, then freeze what is left; the number of objects frozen."""
    started = time.perf_counter()
    gc.collect()  # garbage frozen now would never be collected
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info("start-up heap frozen: %d objects left out of the collector's walks, in %.2fs", frozen,
             time.perf_counter() - started)
    return frozen


def thaw_heap() -> None:
    """A stopped engine's objects become collectable again (tests start many engines in one process)."""
    gc.unfreeze()
