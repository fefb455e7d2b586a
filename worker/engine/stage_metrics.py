"""Per-stage Prometheus metrics of the engine: busy seconds and queue depth of each stage.

Stages: tokenize, schedule, collate, forward, post. Busy time is summed per stage, so
`rate(crossrank_stage_busy_seconds_total[1m])` is the share of one thread a stage keeps busy;
a stage near 1.0 (near tokenizer_workers for tokenize, near the CPU streams for forward) is the
bottleneck. Depths are read
when scraped, so they are always the present value.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge

if TYPE_CHECKING:
    from crossrank.worker.engine.batcher import Batcher


class StageMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.busy_seconds = Counter("crossrank_stage_busy_seconds", "Seconds each engine stage spent working",
                                    ["model", "stage"], registry=registry)
        self.depth = Gauge("crossrank_stage_queue_depth", "Work waiting in front of each engine stage",
                           ["model", "stage"], registry=registry)

    def track_tokenize(self, pairs: Callable[[], int]) -> None:
        self.depth.labels("all", "tokenize").set_function(pairs)

    def track_batcher(self, model: str, batcher: Batcher) -> None:
        self.depth.labels(model, "schedule").set_function(batcher.pending_pairs)
        for stage in ("forward", "post"):
            self.depth.labels(model, stage).set_function(lambda stage=stage: batcher.batches_waiting(stage))

    def busy_of(self, stage: str, since: float, model: str = "all") -> None:
        self.busy_seconds.labels(model, stage).inc(time.perf_counter() - since)

    def observer(self, model: str) -> _StageObserver:
        return _StageObserver(self, model)


class _StageObserver:
    """What the scheduler reports: seconds of work per stage, for one model."""

    def __init__(self, metrics: StageMetrics, model: str):
        self.counter = metrics.busy_seconds
        self.model = model

    def busy(self, stage: str, seconds: float) -> None:
        self.counter.labels(self.model, stage).inc(seconds)
