"""The four ways of scoring the same workload: (a) in-process predict, (b) unary, (c) concurrent, (d) stream.

Each returns a Run: the wall time of the whole workload and every request's latency. The
worker is driven through the raw generated stubs (crossrank.protos), not the SDK: the worker
package may not import the client (layering), and raw stubs keep client-side cost minimal.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from dataclasses import dataclass

import grpc
import torch

from crossrank.protos import pb, pb_grpc
from crossrank.worker.bench.workload import BenchQuery

_OPTIONS = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20),
            # One connection per simulated client, as N separate processes would have.
            ("grpc.use_local_subchannel_pool", 1)]
_TIMEOUT_S = 900.0


@dataclass
class Run:
    name: str
    wall_s: float
    latencies_s: list[float]
    concurrency: int = 1


def run_predict(model_path: str, workload: list[BenchQuery], device: str, batch_size: int = 32) -> Run:
    """(a) The original write-up's way: one CrossEncoder.predict per query, batch_size 32, fp32.

    sentence-transformers 6.x already sorts one call's pairs by length, so this baseline
    pads only within a query; what it cannot do is share batches across queries.
    """
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(model_path, device=device)
    model.predict([(workload[0].query, d) for d in workload[0].documents[:batch_size]],
                  batch_size=batch_size, show_progress_bar=False)  # warm-up, like the worker's
    latencies = []
    start = time.perf_counter()
    for q in workload:
        t0 = time.perf_counter()
        model.predict([(q.query, d) for d in q.documents], batch_size=batch_size, show_progress_bar=False)
        latencies.append(time.perf_counter() - t0)
    wall = time.perf_counter() - start
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return Run("a_predict", wall, latencies)


def _request(q: BenchQuery, i: int) -> pb.RerankRequest:
    return pb.RerankRequest(request_id=str(i), query=q.query, documents=q.documents)


def run_concurrent(address: str, workload: list[BenchQuery], concurrency: int, name: str = "") -> Run:
    """(b) with concurrency 1, (c) otherwise: N clients, each sending its next query when the last returns."""
    latencies: list[float] = [0.0] * len(workload)
    counter = itertools.count()  # next() on it is atomic under the GIL: each query is sent once
    errors: queue.Queue[BaseException] = queue.Queue()
    channels = [grpc.insecure_channel(address, _OPTIONS) for _ in range(concurrency)]
    stubs = [pb_grpc.RerankerStub(c) for c in channels]
    for stub in stubs:  # connect before the clock starts
        stub.Info(pb.InfoRequest(), timeout=30)

    def client(stub: pb_grpc.RerankerStub) -> None:
        try:
            while (i := next(counter)) < len(workload):
                t0 = time.perf_counter()
                stub.Rerank(_request(workload[i], i), timeout=_TIMEOUT_S)
                latencies[i] = time.perf_counter() - t0
        except BaseException as exc:  # reported after the join, in the caller's thread
            errors.put(exc)

    threads = [threading.Thread(target=client, args=(s,), daemon=True) for s in stubs]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    for c in channels:
        c.close()
    if not errors.empty():
        raise errors.get()
    return Run(name or f"concurrency_{concurrency}", wall, latencies, concurrency)


def run_stream(address: str, workload: list[BenchQuery], in_flight: int) -> Run:
    """(d) One RerankStream carrying every query, at most `in_flight` unanswered at a time.

    Latency is from a request entering the stream to its response, which comes in completion order.
    """
    sent: dict[str, float] = {}
    latencies: list[float] = [0.0] * len(workload)
    slots = threading.Semaphore(in_flight)

    def requests():
        for i, q in enumerate(workload):
            slots.acquire()
            sent[str(i)] = time.perf_counter()
            yield _request(q, i)

    with grpc.insecure_channel(address, _OPTIONS) as channel:
        stub = pb_grpc.RerankerStub(channel)
        stub.Info(pb.InfoRequest(), timeout=30)
        start = time.perf_counter()
        for response in stub.RerankStream(requests(), timeout=_TIMEOUT_S):
            latencies[int(response.request_id)] = time.perf_counter() - sent[response.request_id]
            slots.release()
        wall = time.perf_counter() - start
    return Run("d_stream", wall, latencies, in_flight)
