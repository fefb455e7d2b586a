"""Prometheus metrics of one worker, in a registry of its own (several servers can share a process)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from crossrank.common.priority import CLASSES, priority_class

if TYPE_CHECKING:
    import torch

_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
_TOKEN_BUCKETS = (64, 256, 1024, 2048, 4096, 8192, 16384, 32768, 65536)
_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter("crossrank_requests", "RPCs by method and status code", ["method", "code"],
                                registry=r)
        # From the handler's start to its status: a refusal's time on the worker, what overload must keep short.
        self.request_seconds = Histogram("crossrank_request_seconds", "RPC time in the worker, by method and "
                                         "status code", ["method", "code"], buckets=_SECONDS_BUCKETS, registry=r)
        self.pairs = Counter("crossrank_pairs", "Model inputs scored or embedded", ["model"], registry=r)
        self.tokens = Counter("crossrank_tokens", "Tokens fed to the model, without padding", ["model"],
                              registry=r)
        self.dropped = Counter("crossrank_dropped_pairs", "Inputs dropped because their caller went away",
                               ["model"], registry=r)
        self.queue_depth = Gauge("crossrank_queue_depth", "Inputs waiting for a batch", ["model"], registry=r)
        self.batch_size = Histogram("crossrank_batch_size", "Inputs per batch", ["model"],
                                    buckets=_SIZE_BUCKETS, registry=r)
        self.batch_tokens = Histogram("crossrank_batch_tokens", "Padded tokens per batch", ["model"],
                                      buckets=_TOKEN_BUCKETS, registry=r)
        self.queue_seconds = Histogram("crossrank_queue_seconds", "Arrival until first batch, per request",
                                       ["model"], buckets=_SECONDS_BUCKETS, registry=r)
        self.inference_seconds = Histogram("crossrank_inference_seconds", "Forward pass time per batch",
                                           ["model"], buckets=_SECONDS_BUCKETS, registry=r)
        # Per priority class (interactive: priority <= 0, bulk: > 0; crossrank.common.priority): what jobs get.
        self.class_queue_depth = Gauge("crossrank_priority_queue_depth",
                                       "Inputs waiting for a batch, by priority class",
                                       ["model", "priority_class"], registry=r)
        self.class_queue_seconds = Histogram("crossrank_priority_queue_seconds",
                                             "Arrival until first batch, per request, by priority class",
                                             ["model", "priority_class"], buckets=_SECONDS_BUCKETS, registry=r)
        self.class_pairs = Counter("crossrank_priority_pairs", "Model inputs scored or embedded, by priority class",
                                   ["model", "priority_class"], registry=r)
        self.device_memory = Gauge("crossrank_device_memory_bytes", "GPU memory allocated by torch",
                                   ["device"], registry=r)
        self.http_requests = Counter("crossrank_http_requests", "HTTP gateway requests by route and status",
                                     ["route", "status"], registry=r)

    def track_device_memory(self, device: torch.device) -> None:
        """Report a GPU's allocated memory, read when scraped so the hot path pays nothing; a CPU has none."""
        if device.type != "cuda":
            return
        import torch

        self.device_memory.labels(str(device)).set_function(lambda: torch.cuda.memory_allocated(device))

    def request_done(self, model: str, queue_seconds: float, priority: int = 0) -> None:
        """A request's wait from arrival to its first batch, recorded when its last input is scored."""
        self.queue_seconds.labels(model).observe(queue_seconds)
        self.class_queue_seconds.labels(model, priority_class(priority)).observe(queue_seconds)

    def track_priority_depth(self, model: str, depths: Callable[[], dict[int, int]]) -> None:
        """Queue depth per priority class, read from the batcher's depth per priority when scraped."""
        for name in CLASSES:
            self.class_queue_depth.labels(model, name).set_function(
                lambda name=name: sum(n for p, n in depths().items() if priority_class(p) == name))

    def observer(self, model: str) -> _BatchMetrics:
        return _BatchMetrics(self, model)


class _BatchMetrics:
    """The batcher's view of the metrics: recorded where batches are formed and run."""

    def __init__(self, metrics: WorkerMetrics, model: str):
        self.m = metrics
        self.model = model

    def batch_formed(self, pairs: int, tokens: int, padded_tokens: int, queue_depth: int) -> None:
        self.m.batch_size.labels(self.model).observe(pairs)
        self.m.batch_tokens.labels(self.model).observe(padded_tokens)
        self.m.tokens.labels(self.model).inc(tokens)
        self.m.queue_depth.labels(self.model).set(queue_depth)

    def batch_done(self, pairs: int, seconds: float) -> None:
        self.m.pairs.labels(self.model).inc(pairs)
        self.m.inference_seconds.labels(self.model).observe(seconds)

    def dropped(self, pairs: int) -> None:
        self.m.dropped.labels(self.model).inc(pairs)

    def scored(self, priority: int, pairs: int) -> None:
        self.m.class_pairs.labels(self.model, priority_class(priority)).inc(pairs)

    def value(self, name: str) -> float:
        """Current value of a counter for this model, for tests and `Info`."""
        return self.m.registry.get_sample_value(f"crossrank_{name}_total", {"model": self.model}) or 0.0
