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
"""

from __future__ import annotations

import argparse
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


def pairs_scored(metrics_port: int) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
    return sum(float(v) for v in re.findall(r"^crossrank_pairs_total\{[^}]*\} (\S+)$", text, re.M))


def start_worker(args) -> tuple[subprocess.Popen, str, int]:
    port, metrics_port = free_port(), free_port()
    crossrank = str(Path(sys.executable).with_name("crossrank"))
    command = [crossrank, "serve", "--host", "127.0.0.1", "--port", str(port),
               "--model", args.model, "--embed-model", "none", "--device", "cpu",
               "--metrics-port", str(metrics_port), "--log-level", "WARNING"]
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
    before = pairs_scored(metrics_port)
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
    scored = pairs_scored(metrics_port) - before
    answered = codes["OK"] * docs
    return {"sent": sent, "codes": dict(codes), "scored": scored, "answered": answered,
            "goodput": answered / scored if scored else 0.0, "success": codes["OK"] / sent if sent else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=os.environ.get("CROSSRANK_MODEL", DEFAULT_MODEL))
    parser.add_argument("--levels", default="2,5,25", help="Offered load, in multiples of the measured capacity.")
    parser.add_argument("--docs", type=int, default=20, help="Documents per request.")
    parser.add_argument("--seconds", type=float, default=20.0, help="Seconds of sending per level.")
    parser.add_argument("--deadline", type=float, default=0.0,
                        help="Each request's deadline in seconds; 0 = 4x what one request takes at capacity.")
    args = parser.parse_args()
    worker, address, metrics_port = start_worker(args)
    try:
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
