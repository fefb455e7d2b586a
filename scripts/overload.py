"""Overload a real worker and measure goodput and success rate at 2x, 5x and 25x its capacity.

Starts `crossrank serve` (a real process), measures its capacity in pairs/s with a short
stream, then for each level sends Rerank requests open-loop, at `level` times the rate that
capacity can score, for a fixed time, each with a deadline. Counts outcomes by status code,
and reads the worker's own counter of pairs scored (Prometheus), so:

    goodput      = pairs answered to a waiting client / pairs the worker scored
    success rate = requests answered OK / requests sent

Bounded: every loop ends after --seconds of sending plus the deadline. Figures are printed
as a Markdown table. Example (docs/reliability.md, "Overload"):

    python scripts/overload.py --model ../shared/models/crossrank-minilm-l6-weak

`--clients N` runs the closed loop instead, from the moment the worker is up (no capacity
probe first, so the first burst meets a worker that has seen no traffic): N clients each keep
one Rerank of `--docs` documents in flight with a `--deadline`, send the next as soon as one
is answered, and wait `--backoff` s after a refusal. It prints, as an 80-column table, what
was admitted (not refused), completed (OK), dropped at the deadline (DEADLINE_EXCEEDED) and
refused (RESOURCE_EXHAUSTED), and how long refusals took to arrive at p50 and p99. The
scenario of issue 19, and a scaled-down run that takes about a minute:

    python scripts/overload.py --clients 600 --docs 100 --deadline 30 --seconds 60
    python scripts/overload.py --clients 200 --docs 100 --deadline 10 --seconds 30

By default every client sends its first request at the same instant, a herd. `--ramp S` starts them
evenly over S seconds instead, as load tools' spawn rate does. `--floor` runs the same clients, in the
same run, against `scripts/refusing_server.py`, a gRPC server that refuses every call at once: its
refusal times are what the load generator, gRPC and this machine cost before any worker does anything.
`--grpc-floor` also runs them against the same server refusing inside gRPC, before any handler: the
cheapest refusal a Python gRPC server can make.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

import grpc

from crossrank.protos import pb, pb_grpc

DEFAULT_MODEL = "../shared/models/crossrank-minilm-l6-weak"
WORDS = "the market city research model index search health water energy history music river".split()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def documents(n: int, seed: int) -> list[str]:
    return [" ".join(WORDS[(seed + i * 7 + k) % len(WORDS)] for k in range(40 + (seed + i) % 60)) for i in range(n)]


def scrape(metrics_port: int) -> str:
    return urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()


def pairs_scored(text: str) -> float:
    return sum(float(v) for v in re.findall(r"^crossrank_pairs_total\{[^}]*\} (\S+)$", text, re.M))


def refusal_buckets(text: str) -> dict[float, float]:
    """The worker's histogram of its refusals' time (all processes summed): upper bound -> calls."""
    buckets: Counter[float] = Counter()
    for labels, value in re.findall(r"^crossrank_request_seconds_bucket\{([^}]*)\} (\S+)$", text, re.M):
        if 'code="RESOURCE_EXHAUSTED"' in labels and 'method="Rerank"' in labels:
            buckets[float(re.search(r'le="([^"]+)"', labels).group(1))] += float(value)
    return dict(buckets)


def bucket_percentile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """The upper bound of the histogram bucket that holds the q-th percentile of what came between."""
    counts = {le: after[le] - before.get(le, 0.0) for le in sorted(after)}
    total = counts.get(math.inf, 0.0)
    return next((le for le, n in counts.items() if total and n >= q / 100 * total), math.nan)


def start_worker(args) -> tuple[subprocess.Popen, str, int]:
    port, metrics_port = free_port(), free_port()
    crossrank = str(Path(sys.executable).with_name("crossrank"))
    command = [crossrank, "serve", "--host", "127.0.0.1", "--port", str(port),
               "--model", args.model, "--embed-model", "none", "--device", "cpu",
               "--metrics-port", str(metrics_port), "--log-level", "WARNING", "--frontends", args.frontends]
    worker = subprocess.Popen(command, env=os.environ | {"HF_HUB_OFFLINE": "1"})
    address = f"127.0.0.1:{port}"
    stub = pb_grpc.RerankerStub(grpc.insecure_channel(address))
    for _ in range(300):
        try:
            stub.Rerank(pb.RerankRequest(query="warm", documents=["up"]), timeout=5)
            return worker, address, metrics_port
        except grpc.RpcError:
            time.sleep(1)
    worker.kill()
    raise SystemExit("the worker did not start within 300 s")


def capacity(stub, docs: int) -> float:
    """Pairs/s of the worker with 8 requests always in flight, for about 10 s."""
    done = threading.Semaphore(8)
    start, scored = time.perf_counter(), 0
    futures = []
    while time.perf_counter() - start < 10:
        done.acquire()
        f = stub.Rerank.future(pb.RerankRequest(query="what is rag", documents=documents(docs, len(futures))),
                               timeout=120)
        f.add_done_callback(lambda _: done.release())
        futures.append(f)
    for f in futures:
        f.result()
        scored += docs
    return scored / (time.perf_counter() - start)


def level(stub, metrics_port: int, rate_pairs: float, docs: int, seconds: float, deadline: float) -> dict:
    before = pairs_scored(scrape(metrics_port))
    interval = docs / rate_pairs
    futures, sent = [], 0
    start = time.perf_counter()
    while (now := time.perf_counter()) - start < seconds:
        target = start + sent * interval
        if target > now:
            time.sleep(target - now)
        futures.append(stub.Rerank.future(
            pb.RerankRequest(query="what is rag", documents=documents(docs, sent)), timeout=deadline))
        sent += 1
    codes: Counter[str] = Counter()
    for f in futures:
        try:
            f.result()
            codes["OK"] += 1
        except grpc.RpcError as exc:
            codes[exc.code().name] += 1
    time.sleep(2)  # let the worker finish (or drop) what was queued
    scored = pairs_scored(scrape(metrics_port)) - before
    answered = codes["OK"] * docs
    return {"sent": sent, "codes": dict(codes), "scored": scored, "answered": answered,
            "goodput": answered / scored if scored else 0.0, "success": codes["OK"] / sent if sent else 0.0}


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of `values`; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


async def closed_loop(address: str, metrics_port: int | None, clients: int, docs: int, deadline: float,
                      seconds: float, backoff: float, ramp: float = 0.0) -> dict:
    """`clients` callers, one request in flight each, for `seconds` of sending; their outcomes. Client k
    starts `ramp * k / clients` s in; `metrics_port` None: no worker's counters to read."""
    first = scrape(metrics_port) if metrics_port else ""
    codes: Counter[str] = Counter()
    refusal_seconds: list[float] = []
    first_second: list[float] = []  # refusals of requests sent in the first second: a herd's
    lags: list[float] = []
    requests = [pb.RerankRequest(query="what is rag", documents=documents(docs, seed)) for seed in range(16)]
    channels = [grpc.aio.insecure_channel(address) for _ in range(8)]
    start = time.perf_counter()

    async def lag() -> None:
        """How late this process's own event loop wakes: part of every latency measured here."""
        while time.perf_counter() - start < seconds:
            asked = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - asked - 0.01)

    async def client(k: int) -> None:
        stub = pb_grpc.RerankerStub(channels[k % len(channels)])
        sent = 0
        await asyncio.sleep(ramp * k / clients)
        while time.perf_counter() - start < seconds:
            request = requests[(k + sent) % len(requests)]
            sent += 1
            began = time.perf_counter()
            try:
                await stub.Rerank(request, timeout=deadline)
                codes["OK"] += 1
            except grpc.aio.AioRpcError as exc:
                codes[exc.code().name] += 1
                if exc.code() is grpc.StatusCode.RESOURCE_EXHAUSTED:
                    refusal_seconds.append(time.perf_counter() - began)
                    if began - start < 1.0:
                        first_second.append(refusal_seconds[-1])
                    await asyncio.sleep(backoff)

    try:
        await asyncio.gather(lag(), *(client(k) for k in range(clients)))
    finally:
        for channel in channels:
            await channel.close()
    elapsed = time.perf_counter() - start
    await asyncio.sleep(2)  # let the worker finish (or drop) what was queued
    last = scrape(metrics_port) if metrics_port else ""
    return {"codes": codes, "refusals": refusal_seconds, "first_second": first_second, "lags": lags,
            "seconds": elapsed, "scored": pairs_scored(last) - pairs_scored(first),
            "worker_p99": bucket_percentile(refusal_buckets(first), refusal_buckets(last), 99) if last else None}


def refusal_floor(args, in_grpc: bool = False) -> dict:
    """The closed loop against `refusing_server.py`, started as its own process like the worker."""
    port = free_port()
    server = subprocess.Popen([sys.executable, str(Path(__file__).with_name("refusing_server.py")), str(port),
                               *(["--in-grpc"] if in_grpc else [])])
    try:
        address = f"127.0.0.1:{port}"
        with grpc.insecure_channel(address) as channel:
            grpc.channel_ready_future(channel).result(timeout=60)
        return asyncio.run(closed_loop(address, None, args.clients, args.docs, args.deadline, args.seconds,
                                       args.backoff, args.ramp))
    finally:
        server.terminate()
        server.wait(30)


def closed_loop_table(args, r: dict) -> str:
    """The closed loop's outcomes as an 80-column table."""
    c = r["codes"]
    refused, completed, dropped = c["RESOURCE_EXHAUSTED"], c["OK"], c["DEADLINE_EXCEEDED"]
    admitted = sum(c.values()) - refused
    other = admitted - completed - dropped
    share = f"{completed / admitted:.0%}" if admitted else "-"
    start = f"starting over {args.ramp:g} s" if args.ramp else "all starting at once"
    rows = [
        f"{args.clients} clients, {start}, {args.docs} documents a request,",
        f"deadline {args.deadline:g} s, {args.seconds:g} s of sending",
        f"completed pairs/s: {completed * args.docs / r['seconds']:.0f} over {r['seconds']:.0f} s",
        "",
        f"{'admitted':>9} {'completed':>10} {'(share)':>8} {'dropped at':>11} {'other':>6} "
        f"{'refused':>8} {'refusal ms':>10} {'refusal ms':>10}",
        f"{'':>9} {'':>10} {'':>8} {'deadline':>11} {'':>6} {'':>8} {'p50':>10} {'p99':>10}",
        f"{admitted:>9} {completed:>10} {share:>8} {dropped:>11} {other:>6} {refused:>8} "
        f"{percentile(r['refusals'], 50) * 1e3:>10.0f} {percentile(r['refusals'], 99) * 1e3:>10.0f}",
    ]
    answered = completed * args.docs
    rows.append(f"pairs scored {r['scored']:.0f}, answered {answered}: {r['scored'] - answered:.0f} scored for "
                "callers gone")
    rows.append(f"refusals of the requests sent in the first second: p99 "
                f"{percentile(r['first_second'], 99) * 1e3:.0f} ms")
    rows.append(f"time in the worker per refusal (crossrank_request_seconds): p99 <= "
                f"{r['worker_p99'] * 1e3:g} ms")
    rows.append(f"the load generator's loop woke late: p50 {percentile(r['lags'], 50) * 1e3:.0f} ms, "
                f"p99 {percentile(r['lags'], 99) * 1e3:.0f} ms (part of refusal times)")
    for key, server in (("floor", "a gRPC server that refuses at once"),
                        ("grpc_floor", "a server refusing inside gRPC")):
        if key in r:
            f = r[key]
            rows.append(f"{key.replace('_', ' ')}, the same clients against {server}:")
            rows.append(f"  refusal p50 {percentile(f['refusals'], 50) * 1e3:.0f} ms, "
                        f"p99 {percentile(f['refusals'], 99) * 1e3:.0f} ms, "
                        f"the first second's p99 {percentile(f['first_second'], 99) * 1e3:.0f} ms")
    if other:
        rows.append("other: " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())
                                          if k not in ("OK", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED")))
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=os.environ.get("CROSSRANK_MODEL", DEFAULT_MODEL))
    parser.add_argument("--levels", default="2,5,25", help="Offered load, in multiples of the measured capacity.")
    parser.add_argument("--docs", type=int, default=20, help="Documents per request.")
    parser.add_argument("--seconds", type=float, default=20.0, help="Seconds of sending per level.")
    parser.add_argument("--deadline", type=float, default=0.0,
                        help="Each request's deadline in seconds; 0 = 4x what one request takes at capacity "
                        "(30 in the closed loop).")
    parser.add_argument("--clients", type=int, default=0,
                        help="Run the closed loop with this many clients instead of the open-loop levels.")
    parser.add_argument("--frontends", default="0", help="The worker's `serve --frontends` (0: one process).")
    parser.add_argument("--backoff", type=float, default=1.0,
                        help="Closed loop: seconds a client waits after a refusal before it sends again.")
    parser.add_argument("--ramp", type=float, default=0.0,
                        help="Closed loop: start the clients evenly over this many seconds (0: all at once).")
    parser.add_argument("--floor", action="store_true",
                        help="Closed loop: then run the same clients against a server that refuses at once.")
    parser.add_argument("--grpc-floor", action="store_true",
                        help="Closed loop: and against one that refuses inside gRPC, before any handler.")
    args = parser.parse_args()
    worker, address, metrics_port = start_worker(args)
    try:
        if args.clients:
            args.deadline = args.deadline or 30.0
            result = asyncio.run(closed_loop(address, metrics_port, args.clients, args.docs, args.deadline,
                                             args.seconds, args.backoff, args.ramp))
            if args.floor or args.grpc_floor:
                worker.terminate()
                worker.wait(30)
            if args.floor:
                result["floor"] = refusal_floor(args)
            if args.grpc_floor:
                result["grpc_floor"] = refusal_floor(args, in_grpc=True)
            print(closed_loop_table(args, result), flush=True)
            return
        with grpc.insecure_channel(address) as channel:
            stub = pb_grpc.RerankerStub(channel)
            cap = capacity(stub, args.docs)
            args.deadline = args.deadline or max(2.0, 4 * args.docs / cap)
            print(f"capacity: {cap:.0f} pairs/s ({args.docs} documents per request, deadline {args.deadline:.1f} s, "
                  f"{args.seconds:g} s per level)")
            print("| load | requests | OK | DEADLINE_EXCEEDED | RESOURCE_EXHAUSTED | other | pairs scored "
                  "| pairs answered | goodput | success |")
            print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
            for x in (float(v) for v in args.levels.split(",")):
                r = level(stub, metrics_port, x * cap, args.docs, args.seconds, args.deadline)
                c = r["codes"]
                other = r["sent"] - c.get("OK", 0) - c.get("DEADLINE_EXCEEDED", 0) - c.get("RESOURCE_EXHAUSTED", 0)
                print(f"| {x:g}x | {r['sent']} | {c.get('OK', 0)} | {c.get('DEADLINE_EXCEEDED', 0)} | "
                      f"{c.get('RESOURCE_EXHAUSTED', 0)} | {other} | {r['scored']:.0f} | {r['answered']} | "
                      f"{r['goodput']:.0%} | {r['success']:.0%} |", flush=True)
    finally:
        worker.terminate()
        worker.wait(30)


if __name__ == "__main__":
    main()
