"""SIGTERM drains: requests in flight are answered (or refused with 503 / UNAVAILABLE, which
clients retry), never a plain 500, and the process exits within the grace period even while
a long tokenization runs: one process, and every frontend of `--frontends 2` (then the core)."""

from __future__ import annotations

import signal
import threading
import time

import grpc
import httpx
import pytest
from support.workers import serving_worker

from crossrank.common.net import free_port
from crossrank.protos import pb, pb_grpc

GRACE = 1.0


@pytest.mark.slow
@pytest.mark.parametrize("frontends", [0, 2])
def test_sigterm_answers_requests_in_flight_and_exits_within_the_grace_period(tiny_cross_encoder, frontends):
    http_port = free_port()
    slow = ("--grace-seconds", str(GRACE), "--http-port", str(http_port), "--max-batch-pairs", "1",
            "--max-batch-tokens", "128", "--frontends", str(frontends))
    with serving_worker(tiny_cross_encoder, None, *slow) as worker:
        docs = [f"document number {i} " * 4 for i in range(1000)]
        statuses: list[int] = []
        codes: list[grpc.StatusCode] = []

        def http_rerank() -> None:
            try:
                statuses.append(httpx.post(f"http://127.0.0.1:{http_port}/rerank",
                                           json={"query": "q", "texts": docs}, timeout=60).status_code)
            except httpx.TransportError:
                statuses.append(-1)

        def grpc_rerank(documents: list[str]) -> None:
            with grpc.insecure_channel(worker.address) as channel:
                try:
                    pb_grpc.RerankerStub(channel).Rerank(pb.RerankRequest(query="q", documents=documents),
                                                         timeout=60)
                    codes.append(grpc.StatusCode.OK)
                except grpc.RpcError as exc:
                    codes.append(exc.code())

        huge = ["word " * 390_000]  # about 5 s of tokenizing each on a busy 2-core machine
        threads = [threading.Thread(target=http_rerank) for _ in range(3)]
        threads += [threading.Thread(target=grpc_rerank, args=(documents,)) for documents in (docs, huge, huge)]
        for thread in threads:
            thread.start()
        time.sleep(1.5)  # the requests are queued and the first huge one is being tokenized
        worker.proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        worker.proc.wait(GRACE + 5)  # well before the second huge request could even start scoring
        exited_after = time.monotonic() - signalled
        for thread in threads:
            thread.join(60)
        log = worker.output()
    assert worker.proc.returncode == 0, log
    assert exited_after < GRACE + 5
    assert statuses and all(status in (200, 503) for status in statuses), (statuses, log)
    assert 503 in statuses, "some request was still queued when the grace period ended"
    assert grpc.StatusCode.INTERNAL not in codes and grpc.StatusCode.UNKNOWN not in codes, codes
    assert "Exception in ASGI application" not in log and "Traceback" not in log, log
