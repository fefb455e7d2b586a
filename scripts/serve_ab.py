"""A/B `crossrank serve` variants in one run: the same workload through each, rounds interleaved.

Each variant is a `crossrank serve` process (another checkout's venv python, other environment
variables, other flags); all start first, then every round drives each in turn with a
RerankStream of AB_Q queries (default 64), or AB_CLIENTS concurrent unary clients, and prints
pairs/s and the CPU time of the worker's process tree per pair. Used for docs/benchmarks.md,
"The host path":

    AB_MODEL=~/.cache/crossrank/bench/tiny python scripts/serve_ab.py \\
      '{"main": {}, "before": {"python": "../before/.venv/bin/python"}}' 3
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import grpc

from crossrank.common.net import free_port, health_status
from crossrank.worker.bench import runners
from crossrank.worker.bench.process import tree_cpu_seconds
from crossrank.worker.bench.workload import make_workload

MODEL = os.path.expanduser(os.environ.get("AB_MODEL", "~/.cache/crossrank/bench/tiny"))
CLIENTS = int(os.environ.get("AB_CLIENTS", "0"))


def start(variant: dict) -> tuple[subprocess.Popen, str]:
    port = free_port()
    args = variant.get("args", ["--dtype", "fp32"])
    command = [variant.get("python", sys.executable), "-m", "crossrank.client.cli", "serve", "--model", MODEL,
               "--embed-model", "none", "--device", "cpu", "--host", "127.0.0.1", "--port", str(port),
               "--log-level", "WARNING", *args]
    proc = subprocess.Popen(command, env={**os.environ, **variant.get("env", {})}, stdout=subprocess.DEVNULL)
    return proc, f"127.0.0.1:{port}"


def wait_serving(address: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as channel:
        while time.monotonic() < deadline:
            try:
                if health_status(channel) == "SERVING":
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.2)
    raise TimeoutError(f"no worker serving at {address} after {timeout:.0f}s")


def main() -> None:
    variants, rounds = json.loads(sys.argv[1]), int(sys.argv[2])
    workload = make_workload(int(os.environ.get("AB_Q", "64")), 0)
    pairs = sum(len(q.documents) for q in workload)
    served = {name: start(v) for name, v in variants.items()}
    try:
        for _, address in served.values():
            wait_serving(address)
            runners.run_stream(address, workload[:4], 32)  # warm-up
        shape = f"{CLIENTS} clients" if CLIENTS else "a stream of 32 in flight"
        print(f"{pairs} pairs, {shape}; load average {os.getloadavg()[0]:.2f}")
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in served}
        for r in range(rounds):
            for name, (proc, address) in served.items():
                before = tree_cpu_seconds(proc.pid)
                run = (runners.run_concurrent(address, workload, CLIENTS) if CLIENTS
                       else runners.run_stream(address, workload, 32))
                cpu = tree_cpu_seconds(proc.pid) - before
                results[name].append((pairs / run.wall_s, cpu * 1e3 / pairs))
                print(f"round {r} {name:<12} {pairs / run.wall_s:8.1f} pairs/s {cpu * 1e3 / pairs:7.3f} ms CPU/pair "
                      f"{cpu / run.wall_s:5.2f} cores", flush=True)
        for name, rows in results.items():
            cpu = sorted(ms for _, ms in rows)[len(rows) // 2]
            print(f"{name:<12} best {max(rate for rate, _ in rows):8.1f} pairs/s, median {cpu:.3f} ms CPU/pair")
    finally:
        for proc, _ in served.values():
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
