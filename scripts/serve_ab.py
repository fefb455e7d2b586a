"""A/B `crossrank serve` variants in one run: the same workload through each, rounds interleaved.

Each variant is a `crossrank serve` process (another checkout's venv python, other environment
variables, other flags); all start first, then every round drives each in turn with a
RerankStream of AB_Q queries (default 64; AB_STREAMS streams on connections of their own, for
workers with frontends), or AB_CLIENTS concurrent unary clients, and prints
pairs/s, the CPU time of the worker's process tree per pair and, with clients, the calls' p50.
AB_DOCS=LO,HI sets the documents a query has (default 20,100). Used for docs/benchmarks.md,
"The host path":

    AB_MODEL=~/.cache/crossrank/bench/tiny python scripts/serve_ab.py \\
      '{"main": {}, "before": {"python": "../before/.venv/bin/python"}}' 3
"""

from __future__ import annotations

import contextlib
import json
import os
import sys

from crossrank.worker.bench import runners
from crossrank.worker.bench.process import served_worker
from crossrank.worker.bench.workload import make_workload

MODEL = os.path.expanduser(os.environ.get("AB_MODEL", "~/.cache/crossrank/bench/tiny"))
CLIENTS = int(os.environ.get("AB_CLIENTS", "0"))
STREAMS = int(os.environ.get("AB_STREAMS", "1"))


def serve_args(variant: dict) -> list[str]:
    return ["--model", MODEL, "--embed-model", "none", "--device", "cpu", "--log-level", "WARNING",
            *variant.get("args", ["--dtype", "fp32"])]


def main() -> None:
    variants, rounds = json.loads(sys.argv[1]), int(sys.argv[2])
    lo, hi = (int(n) for n in os.environ.get("AB_DOCS", "20,100").split(","))
    workload = make_workload(int(os.environ.get("AB_Q", "64")), 0, min_docs=lo, max_docs=hi)
    pairs = sum(len(q.documents) for q in workload)
    with contextlib.ExitStack() as stack:
        served = {name: stack.enter_context(served_worker(serve_args(v), python=v.get("python", sys.executable),
                                                          env=v.get("env")))
                  for name, v in variants.items()}
        for worker in served.values():
            runners.run_stream(worker.address, workload[:4], 32)  # warm-up
        shape = f"{CLIENTS} clients" if CLIENTS else "a stream of 32 in flight"
        print(f"{pairs} pairs, {shape}; load average {os.getloadavg()[0]:.2f}")
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in served}
        for r in range(rounds):
            for name, worker in served.items():
                before = worker.cpu_seconds()
                run = (runners.run_concurrent(worker.address, workload, CLIENTS) if CLIENTS
                       else runners.run_stream(worker.address, workload, 32, streams=STREAMS))
                cpu = worker.cpu_seconds() - before
                results[name].append((pairs / run.wall_s, cpu * 1e3 / pairs))
                p50 = f" p50 {sorted(run.latencies_s)[len(run.latencies_s) // 2] * 1e3:6.1f} ms" if CLIENTS else ""
                print(f"round {r} {name:<12} {pairs / run.wall_s:8.1f} pairs/s {cpu * 1e3 / pairs:7.3f} ms CPU/pair "
                      f"{cpu / run.wall_s:5.2f} cores{p50}", flush=True)
        for name, rows in results.items():
            cpu = sorted(ms for _, ms in rows)[len(rows) // 2]
            print(f"{name:<12} best {max(rate for rate, _ in rows):8.1f} pairs/s, median {cpu:.3f} ms CPU/pair")


if __name__ == "__main__":
    main()
