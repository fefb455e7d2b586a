"""What one refused Rerank costs a server in CPU: the worker against a bare gRPC server, in one run.

A herd's refusals queue on the event loop that takes every call, so their tail is that loop's CPU
per refused call times the herd (docs/benchmarks.md, "Why a herd of 600 stays over 100 ms"). This
drives `--calls` Rerank calls of `--docs` documents, `--in-flight` at a time, at:
  - the worker, started with `--max-queue-pairs` below `--docs`, so that admission refuses every call;
  - `scripts/refusing_server.py`, a bare grpc.aio server that refuses every call at once;
and prints calls/s and the server's CPU (all its processes) per call. `--baseline DIR` adds a worker
run from another checkout: DIR holds a `crossrank` folder whose subfolders link to that checkout's
`common protos worker client pipeline`, put first on its PYTHONPATH. `--profile DIR` also records
the worker with py-spy (`DIR/refusals.txt`).

    python scripts/refusal_cost.py --rounds 3 [--baseline /tmp/base_pkg] [--profile /tmp/profile]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import grpc
import psutil
from overload import DEFAULT_MODEL, documents, free_port

from crossrank.protos import pb, pb_grpc


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and all its children, so far."""
    top = psutil.Process(pid)
    total = 0.0
    for p in [top, *top.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def wait_refusing(address: str, request: pb.RerankRequest) -> None:
    stub = pb_grpc.RerankerStub(grpc.insecure_channel(address))
    for _ in range(600):
        try:
            stub.Rerank(request, timeout=5)
        except grpc.RpcError as exc:
            if exc.code() is grpc.StatusCode.RESOURCE_EXHAUSTED:
                return
        time.sleep(0.5)
    raise SystemExit(f"{address} did not start refusing within 300 s")


async def drive(address: str, requests: list[pb.RerankRequest], calls: int, in_flight: int) -> tuple[float, dict]:
    codes: dict[str, int] = {}
    channel = grpc.aio.insecure_channel(address)
    stub = pb_grpc.RerankerStub(channel)
    sent = 0

    async def caller() -> None:
        nonlocal sent
        while sent < calls:
            request = requests[sent % len(requests)]
            sent += 1
            try:
                await stub.Rerank(request, timeout=30)
                code = "OK"
            except grpc.aio.AioRpcError as exc:
                code = exc.code().name
            codes[code] = codes.get(code, 0) + 1

    start = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(in_flight)))
    elapsed = time.perf_counter() - start
    await channel.close()
    return elapsed, codes


def measure(pid: int, address: str, args, requests, profile: Path | None = None) -> tuple[float, float]:
    """(calls/s, server CPU us per call) over one drive; under py-spy when `profile` is given."""
    spy = None
    if profile is not None:
        py_spy = str(Path(sys.executable).with_name("py-spy"))
        spy = subprocess.Popen([py_spy, "record", "--pid", str(pid), "--rate", "200", "--format", "raw",
                                "--output", str(profile), "--nonblocking", "--subprocesses"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
    before = cpu_seconds(pid)
    elapsed, codes = asyncio.run(drive(address, requests, args.calls, args.in_flight))
    used = cpu_seconds(pid) - before
    if spy is not None:
        spy.send_signal(2)
        spy.wait(60)
    if set(codes) != {"RESOURCE_EXHAUSTED"}:
        raise SystemExit(f"expected every call refused, got {codes}")
    return args.calls / elapsed, used / args.calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=os.environ.get("CROSSRANK_MODEL", DEFAULT_MODEL))
    parser.add_argument("--docs", type=int, default=100)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="Alternating rounds, worker then bare server.")
    parser.add_argument("--frontends", default="0")
    parser.add_argument("--baseline", type=Path, help="Also a worker from the checkout linked in this folder.")
    parser.add_argument("--profile", type=Path, help="Folder for a py-spy profile of the worker's refusals.")
    args = parser.parse_args()
    requests = [pb.RerankRequest(query="what is rag", documents=documents(args.docs, seed)) for seed in range(16)]

    servers: dict[str, tuple[subprocess.Popen, str]] = {}
    try:
        servers["worker"] = start_worker(args, None)
        if args.baseline:
            servers["baseline"] = start_worker(args, args.baseline)
        port = free_port()
        bare = subprocess.Popen([sys.executable, str(Path(__file__).with_name("refusing_server.py")), str(port)])
        servers["bare server"] = bare, f"127.0.0.1:{port}"
        for _, address in servers.values():
            wait_refusing(address, requests[0])
        print(f"{args.calls} refused calls of {args.docs} documents, {args.in_flight} in flight")
        print(f"{'round':>5} {'server':>12} {'calls/s':>8} {'CPU us a call':>14}")
        for r in range(args.rounds):
            for name, (proc, address) in servers.items():
                rate, us = measure(proc.pid, address, args, requests)
                print(f"{r + 1:>5} {name:>12} {rate:>8.0f} {us:>14.0f}", flush=True)
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            proc, address = servers["worker"]
            measure(proc.pid, address, args, requests, args.profile / "refusals.txt")
            print(f"py-spy profile of the worker's refusals: {args.profile / 'refusals.txt'}")
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(30)


def start_worker(args, checkout: Path | None) -> tuple[subprocess.Popen, str]:
    """`crossrank serve` with a queue too short for one request: admission refuses every call."""
    port = free_port()
    crossrank = str(Path(sys.executable).with_name("crossrank"))
    env = os.environ | {"HF_HUB_OFFLINE": "1"}
    if checkout is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(checkout), env.get("PYTHONPATH")]))
    proc = subprocess.Popen([crossrank, "serve", "--host", "127.0.0.1", "--port", str(port), "--model", args.model,
                             "--embed-model", "none", "--device", "cpu", "--log-level", "WARNING",
                             "--max-queue-pairs", str(max(1, args.docs // 2)), "--frontends", args.frontends], env=env)
    return proc, f"127.0.0.1:{port}"


if __name__ == "__main__":
    main()
