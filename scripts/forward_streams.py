"""The model alone on a CPU, three ways: one thread; one pass on every core (OpenMP); and passes side by
side, one thread each (`--cpu-streams`). Used for docs/benchmarks.md, "CPU streams".

The worker's own runtime (`--torch-graph`, `--dtype`) scores the bench workload's pre-tokenized,
length-sorted batches; each way runs 3 times, and prints pairs/s and this process's CPU per pair.

    HF_HUB_OFFLINE=1 python scripts/forward_streams.py ~/.cache/crossrank/bench/tiny --dtype fp32 --torch-graph traced
"""

from __future__ import annotations

import argparse
import os
import threading
import time

import torch

from crossrank.worker.bench.runners import sorted_batches
from crossrank.worker.bench.workload import make_workload
from crossrank.worker.server import create_server
from crossrank.worker.settings import WorkerSettings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--dtype", default="fp32")
    parser.add_argument("--torch-graph", default="eager")
    parser.add_argument("--queries", type=int, default=64)
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    server = create_server(WorkerSettings(host="127.0.0.1", port=0, model=os.path.expanduser(args.model),
                                          embed_model="none", device="cpu", dtype=args.dtype,
                                          torch_graph=args.torch_graph, cpu_streams=1))
    if not server.wait_ready(600):
        raise SystemExit(f"the model did not load: {server.engine.load_error}")
    runtime = server.engine.scorer
    batches = sorted_batches(runtime, make_workload(args.queries, seed=0), 4096, 32)
    collated = [runtime.collate(b) for b in batches]
    pairs = sum(len(b) for b in batches)

    def in_sequence(threads: int) -> None:
        torch.set_num_threads(threads)
        for features in collated:
            runtime.fetch(runtime.forward(features))

    def side_by_side() -> None:
        todo, lock = iter(collated), threading.Lock()

        def stream() -> None:
            torch.set_num_threads(1)
            while True:
                with lock:
                    features = next(todo, None)
                if features is None:
                    return
                runtime.fetch(runtime.forward(features))

        threads = [threading.Thread(target=stream) for _ in range(cores)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    in_sequence(1)  # warm-up
    ways = {"1 thread": lambda: in_sequence(1), f"1 pass, {cores} threads": lambda: in_sequence(cores),
            f"{cores} passes, 1 thread each": side_by_side}
    print(f"{pairs} pairs, {len(batches)} batches, {cores} cores")
    for name, way in ways.items():
        for _ in range(3):
            cpu, wall = time.process_time(), time.perf_counter()
            way()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            print(f"{name:<26} {pairs / wall:8.0f} pairs/s {cpu * 1e3 / pairs:7.3f} ms CPU/pair", flush=True)
    server.stop(1.0)


if __name__ == "__main__":
    main()
