"""CPU streams: several forward passes in flight at once, each on a share of the cores.

One forward pass spread over every core pays OpenMP's fork and join in each of its ops, and on
a small model that is most of the work. On 2 cores (docs/benchmarks.md, "CPU streams"), the
1-layer bench model on 2 OpenMP threads scored 0.8-1.1x its one-thread rate at 1.5x the CPU a
pair; two passes in flight, one thread each, scored 1.5-2.2x. A 6-layer MiniLM gained 1.7x from
either. So on a CPU the batcher runs `count` forward threads, each on cores // count threads:
parallel across batches rather than inside one. OpenVINO's throughput hint does the same with
its streams.

One exception keeps a lone request as fast as before: a pass that is the worker's only work
(no other pass running, no batch formed or input queued behind it, nothing being tokenized)
runs on all the cores, since no other work would use them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import torch


def auto_count(cores: int) -> int:
    """Streams for `cores` cores: two wherever there are two cores to share.

    Two is where the measured gain lies (the fork and join halved, and one pass's serial parts
    overlapping the other's compute); more would make every batch on a many-core CPU wait
    longer for fewer threads, for a gain not measured.
    """
    return 2 if cores >= 2 else 1


class CpuStreams:
    """How many forward threads a batcher runs, and the torch threads each pass gets."""

    def __init__(self, count: int, cores: int | None = None, busy_elsewhere: Callable[[], bool] = lambda: False):
        """`count` 0: `auto_count`; `cores` None: the cores this process may run on."""
        self.cores = cores or len(os.sched_getaffinity(0))
        self.count = max(1, min(count or auto_count(self.cores), self.cores))
        self.share = max(1, self.cores // self.count)
        self.busy_elsewhere = busy_elsewhere  # work of this worker outside the batcher, e.g. tokenizing
        self._threads = threading.local()

    def before_forward(self, alone: bool) -> int:
        """Set the calling forward thread's torch threads for its next pass; returns them.

        torch keeps OpenMP's thread count per calling thread once set, so each forward thread
        has its own; it is only set when it changes.
        """
        wanted = self.cores if alone and not self.busy_elsewhere() else self.share
        if getattr(self._threads, "count", None) != wanted:
            torch.set_num_threads(wanted)
            self._threads.count = wanted
        return wanted
