"""`crossrank bench --mixed`: live search beside a bulk job on one worker (issue 26).

One worker (in this process, on port 0, as the main suite runs it) and four measurements:

1. capacity: the pairs/s of the bulk flood below (a RerankStream kept `concurrency` requests
   deep) alone, over `capacity_seconds`;
2. interactive alone: Rerank calls sent at a steady rate, `LOAD` of the capacity in pairs/s,
   each call sent on time whether or not the earlier ones have returned (an open loop, as
   live users are); p50 and p99 of their latencies;
3. the same calls while a bulk flood (a RerankStream kept `concurrency` requests deep) runs at
   the pipeline's bulk priority: what a running job costs the live traffic, and the bulk pairs/s
   reached against the capacity the interactive calls leave;
4. the same flood with priorities off (everything at 0): the damage without them.

The targets (issue 26): with the flood, interactive p99 at most 1.5x its p99 alone plus one
batch's forward time (the batch already running when a call arrives is not preempted), and
the flood at least 70% of the capacity left. The batch time is the worker's own mean forward
time per batch during run 3, from its metrics.
"""

from __future__ import annotations

import datetime
import itertools
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

import grpc
import numpy as np

from crossrank.protos import pb, pb_grpc
from crossrank.worker.bench import report, runners
from crossrank.worker.bench.workload import BenchQuery, make_workload

log = logging.getLogger(__name__)

SCHEMA = "crossrank-bench-mixed/1"
LOAD = 0.5  # the interactive stream's share of the capacity
BULK_PRIORITY = 10  # the pipeline's default (CROSSRANK_BULK_PRIORITY)
INTERACTIVE_DOCS = (20, 50)  # documents per live query: a search page's candidates
_TIMEOUT_S = 900.0
_CHANNELS = 4  # interactive calls spread over a few connections, as several frontends would send them
FILL_S = 1.0  # a flood runs this long before anything is measured beside it: the queue fills first


@dataclass
class MixedConfig:
    calls: int = 300  # interactive calls per run
    capacity_seconds: float = 10.0
    concurrency: int = 32  # the flood's requests in flight
    load: float = LOAD
    bulk_priority: int = BULK_PRIORITY
    seed: int = 0


def _request(q: BenchQuery, request_id: str, priority: int) -> pb.RerankRequest:
    return pb.RerankRequest(request_id=request_id, query=q.query, documents=q.documents, priority=priority)


class Flood:
    """A RerankStream kept `in_flight` requests deep, cycling over `workload`, until stopped."""

    def __init__(self, address: str, workload: list[BenchQuery], in_flight: int, priority: int):
        self.address, self.workload, self.priority = address, workload, priority
        self.slots = threading.Semaphore(in_flight)
        self.answered: list[tuple[float, int]] = []  # (when, pairs) of each bulk response
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._call: Any = None
        self._thread = threading.Thread(target=self._run, name="bulk-flood", daemon=True)

    def _requests(self):
        for i in itertools.count():
            while not self.slots.acquire(timeout=0.1):
                if self._stop.is_set():
                    return
            if self._stop.is_set():
                return
            yield _request(self.workload[i % len(self.workload)], f"bulk-{i}", self.priority)

    def _run(self) -> None:
        with grpc.insecure_channel(self.address, runners._OPTIONS) as channel:
            self._call = pb_grpc.RerankerStub(channel).RerankStream(self._requests(), timeout=_TIMEOUT_S)
            try:
                for response in self._call:
                    self.answered.append((time.perf_counter(), response.usage.pairs))
                    self.slots.release()
            except grpc.RpcError as exc:
                if not self._stop.is_set():
                    self.errors.append(exc)

    def __enter__(self) -> Flood:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._call is not None:
            self._call.cancel()  # what is still queued is dropped, not scored for no one
        self._thread.join(60)
        if self.errors:
            raise self.errors[0]

    def pairs_per_s(self, start: float, end: float) -> float:
        pairs = sum(n for when, n in self.answered if start <= when <= end)
        return pairs / (end - start) if end > start else 0.0


def steady_calls(
    address: str, workload: list[BenchQuery], per_s: float, priority: int = 0
) -> tuple[list[float], float, float]:
    """Send each query as a Rerank call at `per_s` calls a second; their latencies, and the run's start and end."""
    channels = [grpc.insecure_channel(address, runners._OPTIONS) for _ in range(_CHANNELS)]
    stubs = [pb_grpc.RerankerStub(c) for c in channels]
    for stub in stubs:  # connect before the clock starts
        stub.Info(pb.InfoRequest(), timeout=30)
    latencies = [0.0] * len(workload)
    futures = []
    start = time.perf_counter()
    try:
        for i, q in enumerate(workload):
            time.sleep(max(0.0, start + i / per_s - time.perf_counter()))
            sent = time.perf_counter()
            future = stubs[i % len(stubs)].Rerank.future(_request(q, f"live-{i}", priority), timeout=_TIMEOUT_S)
            future.add_done_callback(lambda _f, i=i, sent=sent: latencies.__setitem__(i, time.perf_counter() - sent))
            futures.append(future)
        for future in futures:
            future.result()
        end = time.perf_counter()
    finally:
        for c in channels:
            c.close()
    return latencies, start, end


def _latency_row(name: str, latencies: list[float]) -> dict[str, Any]:
    ms = np.asarray(latencies) * 1e3
    return {
        "name": name,
        "calls": len(ms),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
    }


def _forward_seconds(engine) -> tuple[float, float]:
    """The worker's forward passes so far: (seconds, batches), from its own histogram."""
    registry, labels = engine.metrics.registry, {"model": engine.settings.model}
    return (
        registry.get_sample_value("crossrank_inference_seconds_sum", labels) or 0.0,
        registry.get_sample_value("crossrank_inference_seconds_count", labels) or 0.0,
    )


def run(cfg, mixed: MixedConfig) -> dict[str, Any]:
    """`cfg` is the main suite's BenchConfig: the same worker, model and batch limits."""
    from crossrank.worker.bench.suite import _worker_settings
    from crossrank.worker.server import create_server

    bulk = make_workload(max(cfg.queries, 8), seed=cfg.seed, fixed_length=cfg.fixed_length)
    live = make_workload(
        mixed.calls,
        seed=cfg.seed + 1,
        fixed_length=cfg.fixed_length,
        min_docs=INTERACTIVE_DOCS[0],
        max_docs=INTERACTIVE_DOCS[1],
    )
    live_pairs = sum(len(q.documents) for q in live)
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    server = create_server(_worker_settings(cfg))
    try:
        if not server.wait_ready(1800):
            raise RuntimeError(f"worker failed to load {cfg.model_path}: {server.engine.load_error}")
        address, engine = server.address, server.engine
        runners.run_stream(address, bulk[:4], mixed.concurrency)  # warm-up
        log.info("capacity: the bulk flood alone, %d in flight, for %.0fs", mixed.concurrency, mixed.capacity_seconds)
        with Flood(address, bulk, mixed.concurrency, mixed.bulk_priority) as flood:
            time.sleep(FILL_S)
            start = time.perf_counter()
            time.sleep(mixed.capacity_seconds)
            capacity = flood.pairs_per_s(start, time.perf_counter())
        per_s = mixed.load * capacity / (live_pairs / len(live))  # calls a second for LOAD of the capacity
        log.info("interactive alone: %d calls at %.1f/s", len(live), per_s)
        alone, start, end = steady_calls(address, live, per_s)
        offered = live_pairs / (end - start)
        rows = [_latency_row("alone", alone) | {"bulk_pairs_per_s": None, "of_left": None}]
        batch_s = 0.0
        for name, bulk_priority in (("priority", mixed.bulk_priority), ("no_priority", 0)):  # live calls at 0
            log.info("interactive with a bulk flood at priority %d", bulk_priority)
            forward_before = _forward_seconds(engine)
            with Flood(address, bulk, mixed.concurrency, bulk_priority) as flood:
                time.sleep(FILL_S)
                latencies, start, end = steady_calls(address, live, per_s)
            rate = flood.pairs_per_s(start, end)
            rows.append(
                _latency_row(name, latencies)
                | {"bulk_pairs_per_s": round(rate, 1), "of_left": round(rate / max(capacity - offered, 1e-9), 3)}
            )
            if name == "priority":
                seconds, batches = (a - b for a, b in zip(_forward_seconds(engine), forward_before, strict=True))
                batch_s = seconds / batches if batches else 0.0
    finally:
        server.stop(1.0)
    runs = {r["name"]: r for r in rows}
    p99_bound = 1.5 * runs["alone"]["p99_ms"] + batch_s * 1e3
    return {
        "schema": SCHEMA,
        "date": started,
        "machine": report.machine() | {"load_average_after": os.getloadavg()},
        "config": asdict(cfg) | {"mixed": asdict(mixed)},
        "capacity_pairs_per_s": round(capacity, 1),
        "interactive_pairs_per_s": round(offered, 1),
        "interactive_calls_per_s": round(per_s, 2),
        "batch_forward_ms": round(batch_s * 1e3, 2),
        "runs": runs,
        "targets": {
            "p99_with_flood": {
                "value": runs["priority"]["p99_ms"],
                "target": round(p99_bound, 2),
                "met": runs["priority"]["p99_ms"] <= p99_bound,
            },
            "bulk_of_capacity_left": {
                "value": runs["priority"]["of_left"],
                "target": 0.7,
                "met": runs["priority"]["of_left"] >= 0.7,
            },
        },
    }


def summary_lines(result: dict[str, Any]) -> list[str]:
    """The report as rows of at most 80 columns."""
    lines = [
        f"mixed: capacity {result['capacity_pairs_per_s']:.0f} pairs/s, interactive "
        f"{result['interactive_pairs_per_s']:.0f} pairs/s, batch {result['batch_forward_ms']:.1f} ms",
        f"{'interactive Rerank':<28}{'p50 ms':>9}{'p99 ms':>9}{'bulk pairs/s':>14}{'of left':>9}",
    ]
    labels = {"alone": "alone", "priority": "+ bulk flood, priorities", "no_priority": "+ bulk flood, all at 0"}
    for name, label in labels.items():
        r = result["runs"][name]
        bulk = "-" if r["bulk_pairs_per_s"] is None else f"{r['bulk_pairs_per_s']:.0f}"
        left = "-" if r["of_left"] is None else f"{r['of_left']:.2f}"
        lines.append(f"{label:<28}{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}{bulk:>14}{left:>9}")
    for name, t in result["targets"].items():
        lines.append(f"target {name}: {t['value']} (target {t['target']}) {'met' if t['met'] else 'NOT met'}")
    return lines
