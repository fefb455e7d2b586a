"""`crossrank serve --frontends 2` under real kills and cancellation.

A killed frontend (`kill -9`) is started again and only its own calls fail, UNAVAILABLE, which
the SDK retries; a killed core turns every frontend NOT_SERVING at once, a new core loads, and
serving resumes with the same scores. A call its caller cancels, or whose frontend dies, is
dropped in the core too: nothing is scored for a caller that has gone.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time

import grpc
import httpx
import numpy as np
import pytest
from numpy.testing import assert_allclose
from prometheus_client.parser import text_string_to_metric_families
from support.workers import WorkerProcess, serving_worker

from crossrank.client import CrossrankClient
from crossrank.common.net import free_port, health_status
from crossrank.protos import pb, pb_grpc

pytestmark = pytest.mark.slow

QUERY = "what is retrieval augmented generation"
DOCS = ["retrieval augmented generation combines search with a language model", "paris is the capital of france",
        "a vector database stores embeddings for search", "the stock market fell on monday"]


@pytest.fixture
def split_worker(tiny_cross_encoder):
    with serving_worker(tiny_cross_encoder, None, "--frontends", "2") as worker:
        yield worker


def started_pid(worker, role: str) -> int:
    """The pid of the latest `role` process the supervisor started, from its log."""
    pids = re.findall(rf"started {role} \(pid (\d+)\)", worker.output())
    assert pids, worker.output()
    return int(pids[-1])


def wait_for(condition, timeout: float, what: str, worker=None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        log = "" if worker is None else f"; the worker's log:\n{worker.output()[-6000:]}"
        assert time.monotonic() < deadline, what + log
        time.sleep(0.05)


def health(address: str) -> str:
    """Health over a new connection: with SO_REUSEPORT, any of the frontends answers."""
    with grpc.insecure_channel(address) as channel:
        try:
            return health_status(channel, timeout=2)
        except grpc.RpcError as exc:
            return exc.code().name


def scores(client: CrossrankClient) -> np.ndarray:
    got = np.empty(len(DOCS))
    for r in client.rerank(QUERY, DOCS).results:
        got[r.index] = r.score
    return got


def test_a_killed_frontend_is_started_again_and_the_calls_around_it_succeed(split_worker, oracle):
    expected = oracle.predict([(QUERY, d) for d in DOCS])
    victim = started_pid(split_worker, "frontend-1")
    results: list[np.ndarray] = []
    errors: list[BaseException] = []

    def calls() -> None:
        with CrossrankClient(split_worker.address, timeout=60) as client:
            for _ in range(30):
                try:
                    results.append(scores(client))
                except BaseException as exc:  # noqa: BLE001 (the assertion below reports it)
                    errors.append(exc)

    # Eight connections: SO_REUSEPORT spreads them over both frontends (all on one: 1 in 256).
    callers = [threading.Thread(target=calls) for _ in range(8)]
    for caller in callers:
        caller.start()
    wait_for(lambda: len(results) >= 20, 60, "no calls succeeded before the kill")
    os.kill(victim, signal.SIGKILL)
    for caller in callers:
        caller.join(120)
    assert not errors, errors[:3]
    assert len(results) == 240
    for got in results:
        assert_allclose(got, expected, atol=1e-4)
    wait_for(lambda: started_pid(split_worker, "frontend-1") != victim, 10, "frontend-1 was not started again")
    assert "frontend-1 died (exit code -9)" in split_worker.output()


def test_a_killed_core_turns_the_frontends_not_serving_then_a_new_core_serves(split_worker, oracle):
    expected = oracle.predict([(QUERY, d) for d in DOCS])
    core = started_pid(split_worker, "core")
    os.kill(core, signal.SIGKILL)
    wait_for(lambda: health(split_worker.address) != "SERVING", 5, "still SERVING after the core was killed",
             split_worker)
    wait_for(lambda: started_pid(split_worker, "core") != core, 10, "no new core was started", split_worker)
    # A new core loads and warms the model afresh: seconds on a quiet machine, a minute or more on a busy one.
    wait_for(lambda: health(split_worker.address) == "SERVING", 240, "not SERVING again after a new core",
             split_worker)
    with CrossrankClient(split_worker.address, timeout=60) as client:
        for _ in range(4):  # over new connections: each frontend serves again
            try:
                got = scores(client)
            except Exception as exc:
                raise AssertionError(f"{exc!r}; the worker's log:\n{split_worker.output()[-8000:]}") from exc
            assert_allclose(got, expected, atol=1e-4)
    assert split_worker.proc.poll() is None
    log = split_worker.output()
    assert "the engine core died (exit code -9)" in log and "the engine core is gone: NOT_SERVING" in log


def test_a_core_killed_as_a_frontend_finishes_loading_is_replaced_and_it_serves(tiny_cross_encoder, oracle):
    """The core dies just as a frontend has warmed up: between its `model ready` and its server's first health
    (the heap freeze takes a few hundred ms). The frontend must take the core's death as the others do, not as its
    own failure to start; once, it said "could not start: None", and `serve` gave up on the whole worker."""
    expected = oracle.predict([(QUERY, d) for d in DOCS])
    worker = WorkerProcess(tiny_cross_encoder, None, None, "--frontends", "2")
    try:
        wait_for(lambda: re.search(r"model ready: .* role=frontend-", worker.output()), 240,
                 "no frontend got ready", worker)
        core = started_pid(worker, "core")
        os.kill(core, signal.SIGKILL)
        wait_for(lambda: started_pid(worker, "core") != core, 10, "no new core was started", worker)
        wait_for(lambda: health(worker.address) == "SERVING", 240, "not SERVING after a new core", worker)
        with CrossrankClient(worker.address, timeout=60) as client:
            for _ in range(4):  # over new connections: each frontend serves
                assert_allclose(scores(client), expected, atol=1e-4)
        assert worker.proc.poll() is None, worker.output()
        assert "could not start" not in worker.output()
    finally:
        worker.stop()


def core_counter(metrics_url: str, family: str) -> float:
    text = httpx.get(metrics_url, timeout=10).text
    return sum(s.value for f in text_string_to_metric_families(text) if f.name == family for s in f.samples
               if s.name == f"{family}_total" and s.labels.get("process") == "core")


def holder_of(worker, port: int) -> int:
    """The frontend that holds the one client connection to `port`."""
    import psutil

    holders = [started_pid(worker, f"frontend-{i}") for i in range(2)]
    (pid,) = [pid for pid in holders if any(c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port
                                            for c in psutil.Process(pid).net_connections())]
    return pid


@pytest.mark.parametrize("gone", ["cancelled", "frontend killed"])
def test_work_whose_caller_has_gone_is_dropped_in_the_core(tiny_cross_encoder, gone):
    metrics_port = free_port()
    # One pair a batch, so the core still holds most of the pairs when the caller goes: the supervisor
    # tells it at once of a killed frontend (within its 0.1 s watch), not after the frontend's silence.
    slow = ("--frontends", "2", "--metrics-port", str(metrics_port), "--max-batch-pairs", "1",
            "--max-batch-tokens", "128")
    with serving_worker(tiny_cross_encoder, None, *slow) as worker:
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        docs = [f"document number {i} " * 4 for i in range(1000)]
        warm_up = core_counter(url, "crossrank_pairs")
        with grpc.insecure_channel(worker.address) as channel:
            call = pb_grpc.RerankerStub(channel).Rerank.future(pb.RerankRequest(query="q", documents=docs),
                                                              timeout=120)
            wait_for(lambda: core_counter(url, "crossrank_pairs") > warm_up, 30, "the core scored nothing")
            if gone == "cancelled":
                assert call.cancel()
            else:
                os.kill(holder_of(worker, int(worker.address.rsplit(":", 1)[1])), signal.SIGKILL)
                with pytest.raises(grpc.RpcError) as ended:
                    call.result()
                assert ended.value.code() is grpc.StatusCode.UNAVAILABLE
        wait_for(lambda: core_counter(url, "crossrank_dropped_pairs") > 0, 30, "the core dropped nothing", worker)
        time.sleep(0.5)  # the batches formed before the drop finish
        scored = core_counter(url, "crossrank_pairs")
        time.sleep(1.0)
        assert core_counter(url, "crossrank_pairs") == scored < warm_up + len(docs)  # it stopped scoring them
        if gone == "frontend killed":
            assert "died; dropping their 1 requests" in worker.output(), worker.output()[-6000:]
