"""The ways of scoring the same workload: (a) in-process predict, (p) the peers (sentence-transformers at
the serving dtype, at fp32, and through its own ONNX and OpenVINO backends), (m) the worker's model alone,
(b) unary, (c) concurrent, (d) stream; and one core's tokenizer rate.

Each returns a Run: the wall time of the whole workload, every request's latency, and the
process's CPU time over the run (process CPU seconds / wall = cores kept busy). The
worker is driven through the raw generated stubs (crossrank.protos), not the SDK: the worker
package may not import the client (layering), and raw stubs keep client-side cost minimal.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

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
    cpu_s: float = 0.0
    padding: float | None = None  # real tokens over padded tokens in the batches the run formed


class _Clock:
    """Wall and process CPU time from the start of a run."""

    def __init__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def run(self, name: str, latencies: list[float], concurrency: int = 1) -> Run:
        return Run(name, time.perf_counter() - self.wall, latencies, concurrency, time.process_time() - self.cpu)


def run_predict(model_path: str, workload: list[BenchQuery], device: str, batch_size: int = 32,
                dtype: torch.dtype | None = None, one_call: bool = False, name: str = "a_predict",
                backend: str = "torch") -> Run:
    """(a) Plain sentence-transformers: one CrossEncoder.predict per query, batch_size 32 (its default), fp32.

    sentence-transformers 6.x already sorts one call's pairs by length, so this baseline
    pads only within a query; what it cannot do is share batches across queries. With `dtype`
    it is (p), the peer at the worker's precision (weights stored in it), per query or, with
    `one_call`, every pair in one sorted call. With `backend` ("onnx", "openvino") it is
    sentence-transformers' own export of the model through optimum, which raises when optimum's
    backend package is not installed.
    """
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(model_path, device=device, backend=backend,
                         model_kwargs={"dtype": dtype} if dtype else {})
    model.predict([(workload[0].query, d) for d in workload[0].documents[:batch_size]],
                  batch_size=batch_size, show_progress_bar=False)  # warm-up, like the worker's
    calls = [[(q.query, d) for q in workload for d in q.documents]] if one_call else [
        [(q.query, d) for d in q.documents] for q in workload]
    latencies = []
    clock = _Clock()
    for pairs in calls:
        t0 = time.perf_counter()
        model.predict(pairs, batch_size=batch_size, show_progress_bar=False)
        latencies.append(time.perf_counter() - t0)
    run = clock.run(name, latencies)
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return run


def sorted_batches(runtime, workload: list[BenchQuery], max_tokens: int, max_pairs: int) -> list[Any]:
    """Every pair of the workload tokenized, sorted by length and cut into batches under the worker's
    token and pair budgets: the Batches that `runtime.collate` pads."""
    import numpy as np

    from crossrank.worker.engine.batcher import Batch, Ticket

    tickets = [Ticket(runtime.pair_tokenizer.encode(q.query, q.documents)) for q in workload]
    owners = np.repeat(np.arange(len(tickets)), [t.size for t in tickets])
    indexes = np.concatenate([np.arange(t.size) for t in tickets])
    lengths = np.concatenate([t.tokens.lengths for t in tickets])
    order = np.argsort(lengths, kind="stable")
    batches, start = [], 0
    for end in range(1, len(order) + 1):  # sorted ascending: the last row is each batch's longest
        size = end - start
        if end == len(order) or size == max_pairs or int(lengths[order[end]]) * (size + 1) > max_tokens:
            rows = order[start:end]
            batches.append(Batch.gather(tickets, owners[rows], indexes[rows]))
            start = end
    return batches


def run_model_only(runtime, workload: list[BenchQuery], max_tokens: int, max_pairs: int,
                   name: str = "m_model_only") -> Run:
    """(m) The worker's own runtime fed pre-tokenized, pre-padded, length-sorted batches: the ceiling.

    Tokenizing and padding happen before the clock starts; the clock sees forward passes and
    their results only, batched by the worker's own token and pair budgets.
    """
    batches = sorted_batches(runtime, workload, max_tokens, max_pairs)
    collated = [runtime.collate(b) for b in batches]
    runtime.fetch(runtime.forward(collated[-1]))  # warm-up at the longest shape
    # On a GPU every batch is launched before the first is fetched. Elsewhere each is fetched before the
    # next starts: OpenVINO's `forward` waits for an idle infer request, which only a fetch gives back.
    on_gpu = getattr(getattr(runtime, "placement", None), "device", None) is not None and \
        runtime.placement.device.type == "cuda"
    clock = _Clock()
    outputs: list[Any] = []
    for features in collated:
        outputs.append(runtime.forward(features))
        if not on_gpu:
            runtime.fetch(outputs.pop())
    for output in outputs:
        runtime.fetch(output)
    run = clock.run(name, [], 1)
    run.latencies_s = [run.wall_s]
    run.padding = sum(int(b.lengths.sum()) for b in batches) / sum(b.padded_tokens for b in batches)
    return run


def run_tokenizer(tokenizer, workload: list[BenchQuery], max_length: int) -> Run:
    """One core's tokenizer rate: the model's own fast tokenizer, one call per query, on this thread."""
    clock = _Clock()
    latencies = []
    for q in workload:
        t0 = time.perf_counter()
        tokenizer([q.query] * len(q.documents), q.documents, truncation="only_second", max_length=max_length)
        latencies.append(time.perf_counter() - t0)
    return clock.run("tokenizer_1_core", latencies)


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
    clock = _Clock()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run = clock.run(name or f"concurrency_{concurrency}", latencies, concurrency)
    for c in channels:
        c.close()
    if not errors.empty():
        raise errors.get()
    return run


def run_stream(address: str, workload: list[BenchQuery], in_flight: int, name: str = "d_stream",
               streams: int = 1) -> Run:
    """(d) RerankStreams carrying every query, at most `in_flight` unanswered at a time in all.

    Latency is from a request entering a stream to its response, which comes in completion order.
    `streams` > 1 splits the queries over that many streams, each on a connection of its own: how
    a worker with several frontend processes (SO_REUSEPORT spreads connections) is fed.
    """
    sent: dict[str, float] = {}
    latencies: list[float] = [0.0] * len(workload)
    slots = threading.Semaphore(in_flight)

    def one_stream(indexes: list[int]) -> None:
        def requests():
            for i in indexes:
                slots.acquire()
                sent[str(i)] = time.perf_counter()
                yield _request(workload[i], i)

        with grpc.insecure_channel(address, _OPTIONS) as channel:
            stub = pb_grpc.RerankerStub(channel)
            for response in stub.RerankStream(requests(), timeout=_TIMEOUT_S):
                latencies[int(response.request_id)] = time.perf_counter() - sent[response.request_id]
                slots.release()

    with grpc.insecure_channel(address, _OPTIONS) as channel:
        pb_grpc.RerankerStub(channel).Info(pb.InfoRequest(), timeout=30)
    clock = _Clock()
    parts = [list(range(k, len(workload), streams)) for k in range(streams)]
    with ThreadPoolExecutor(streams) as pool:
        list(pool.map(one_stream, parts))
    return clock.run(name, latencies, in_flight)
