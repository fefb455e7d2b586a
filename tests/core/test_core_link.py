"""The engine core's link (`worker/engine_core`), over real ZeroMQ sockets in one process.

A core (`CoreServer` around a real engine) is driven by hand-made frontend messages, and a
frontend (`CoreClient`) by a hand-made core, so each rule of the link is seen alone: what a core
started afresh does with its predecessor's work, what a dead frontend's work becomes, and when
either side takes the other for dead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import zmq
from support.workers import worker_settings

from crossrank.worker import errors
from crossrank.worker.engine import Engine
from crossrank.worker.engine.batcher import Ticket
from crossrank.worker.engine.tokenizer import Tokens
from crossrank.worker.engine_core import wire
from crossrank.worker.engine_core.client import CoreClient
from crossrank.worker.engine_core.server import CoreServer


def load(engine: Engine) -> None:
    """Load on a thread of its own, as a worker does: loading lowers the CPU priority of the thread that
    loads (`Engine._stand_back_on_a_cpu`), which must not be the test session's main thread."""
    loader = threading.Thread(target=engine.load)
    loader.start()
    loader.join(120)


def tokens(engine: Engine, n: int) -> Tokens:
    return engine.pair_tokenizer.encode("query", [f"document number {i}" for i in range(n)])


def one_input() -> Tokens:
    """Token arrays as a frontend sends them, for where no tokenizer is at hand."""
    return Tokens(np.arange(4, dtype=np.int64), None, np.array([0, 4], dtype=np.int64), np.zeros(1, dtype=np.int64))


def sent_at(frames: list, at: float | None) -> list:
    """`frames` as if sent at `at` (a time.monotonic() long ago, say), read only now."""
    if at is not None:
        frames[1] = json.dumps({**wire.header(frames), "at": at}).encode()
    return frames


class FrontendEnd:
    """A frontend's two sockets, speaking wire.py by hand."""

    def __init__(self, context: zmq.Context, requests: str, replies: str, name: str):
        self.name = name
        self.push = context.socket(zmq.PUSH)
        self.push.connect(requests)
        self.sub = context.socket(zmq.SUB)
        self.sub.setsockopt(zmq.SUBSCRIBE, name.encode())
        self.sub.setsockopt(zmq.SUBSCRIBE, wire.STATUS)
        self.sub.connect(replies)
        self.seq = 0

    def status(self, timeout: float = 10.0) -> dict:
        return self.next_reply(timeout, status=True)

    def wait_received(self, timeout: float = 10.0) -> None:
        """Until a status counts this frontend's last submit as received by the core."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            status = self.status(timeout)
            if status and status["received"].get(self.name, 0) >= self.seq:
                return
        raise AssertionError("the core did not receive the submit")

    def submit(self, core: str, request_id: int, toks: Tokens, at: float | None = None) -> None:
        self.seq += 1
        frames = wire.submit_frames({"id": request_id, "kind": "score", "priority": 0, "timeout": 60,
                                     "frontend": self.name, "seq": self.seq, "core": core}, toks)
        self.push.send_multipart(sent_at(frames, at))

    def alive(self, at: float | None = None) -> None:
        self.push.send_multipart(sent_at(wire.pack(wire.ALIVE, {"frontend": self.name}), at))

    def next_reply(self, timeout: float, status: bool = False) -> dict | None:
        """The next reply to this frontend (or status), or None when none comes within `timeout`."""
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            if not self.sub.poll(int(left * 1000) + 1):
                return None
            topic, kind, *rest = self.sub.recv_multipart()
            if (topic == wire.STATUS) == status:
                head = wire.header([kind, *rest])
                return head | {"kind": kind.decode()}
        return None


@pytest.fixture
def core(tiny_cross_encoder, tmp_path):
    engine = Engine(worker_settings(tiny_cross_encoder, max_batch_pairs=1, cpu_streams=1, torch_graph="eager"))
    requests, replies = f"ipc://{tmp_path}/requests", f"ipc://{tmp_path}/replies"
    server = CoreServer(engine, requests, replies).start()
    context = zmq.Context()
    ends: list[FrontendEnd] = []

    def frontend(name: str) -> FrontendEnd:
        ends.append(FrontendEnd(context, requests, replies, name))
        return ends[-1]

    yield engine, server, frontend, context, requests
    for end in ends:
        end.push.close(linger=0)
        end.sub.close(linger=0)
    context.term()
    server.stop()
    engine.stop()


def test_a_core_refuses_work_sent_to_the_core_before_it_and_scores_its_own(core):
    engine, server, frontend, _, _ = core
    load(engine)
    f = frontend("frontend-0-1")
    assert f.status()["core"] == server.boot
    toks = tokens(engine, 3)
    f.submit("1234-5678", 1, toks)  # named for a core that has died since
    refused = f.next_reply(10)
    assert refused is not None and refused["kind"] == "failed" and refused["error"] == "NotReadyError"
    assert "restarted" in refused["message"]
    f.submit(server.boot, 2, toks)
    scored = f.next_reply(30)
    assert scored is not None and scored["kind"] == "done" and scored["id"] == 2 and scored["shape"] == [3]


def test_a_core_still_loading_answers_retry_not_a_wrong_error(core):
    engine, server, frontend, _, _ = core
    f = frontend("frontend-0-1")
    status = f.status()
    assert not status["ready"]
    f.submit(server.boot, 1, one_input())
    refused = f.next_reply(10)
    assert refused is not None and refused["error"] == "NotReadyError" and "still loading" in refused["message"]


def test_a_frontend_the_supervisor_saw_die_loses_its_work_at_once(core):
    engine, server, frontend, context, requests = core
    load(engine)
    f = frontend("frontend-0-1")
    f.status()
    f.submit(server.boot, 1, tokens(engine, 2000))  # one pair a batch: seconds of work
    f.wait_received()
    supervisor = context.socket(zmq.PUSH)
    supervisor.connect(requests)
    supervisor.send_multipart(wire.pack(wire.GONE, {"frontend": f.name}))
    f.alive()  # still speaking (read late, say): the supervisor's word is what drops its work
    dropped = f.next_reply(wire.SILENCE / 2)
    supervisor.close(linger=0)
    assert dropped is not None and dropped["kind"] == "failed" and "lost this frontend" in dropped["message"]
    f.submit(server.boot, 2, tokens(engine, 1))  # sent before it died, read after: no one waits for it
    assert f.next_reply(1.0) is None


def test_silence_is_judged_by_when_a_frontend_spoke_not_when_its_words_were_read(core):
    engine, server, frontend, _, _ = core
    load(engine)
    f = frontend("frontend-0-1")
    f.status()
    long_ago = time.monotonic() - 2 * wire.SILENCE
    f.alive(at=long_ago)  # read now, sent long ago: this frontend has been silent since
    f.submit(server.boot, 1, tokens(engine, 2000), at=long_ago)
    dropped = f.next_reply(wire.SILENCE / 2)
    assert dropped is not None and "lost this frontend" in dropped["message"]


def test_an_idle_core_says_its_status_once_a_heartbeat_however_often_frontends_say_alive(core):
    # An "alive" changes nothing a status says. Were it taken for a change, every one would bring a
    # status STATUS_EVERY later: 180 in this test before that was fixed, against the heartbeat's 10.
    engine, _, frontend, _, _ = core
    load(engine)
    f = frontend("frontend-0-1")
    f.status()
    statuses, end = 0, time.monotonic() + 10 * wire.HEARTBEAT
    while time.monotonic() < end:
        f.alive()
        if f.next_reply(0.01, status=True) is not None:
            statuses += 1
    assert 1 <= statuses <= 15


class CoreEnd:
    """A core's two sockets, speaking wire.py by hand, for a real `CoreClient`."""

    def __init__(self, tmp_path):
        self.requests, self.replies = f"ipc://{tmp_path}/requests", f"ipc://{tmp_path}/replies"
        self.context = zmq.Context()
        self.pull, self.pub = self.context.socket(zmq.PULL), self.context.socket(zmq.PUB)
        self.pull.bind(self.requests)
        self.pub.bind(self.replies)

    def status(self, core: str, pid: int) -> None:
        head = {"core": core, "pid": pid, "ready": True, "load_error": None, "info": {}, "queues": {},
                "received": {}}
        self.pub.send_multipart([wire.STATUS, *wire.pack(wire.STATUS, head)])

    def serving(self, client: CoreClient, core: str, pid: int) -> None:
        """Statuses until the client's SUB socket has joined and takes this core for alive."""
        deadline = time.monotonic() + 10
        while not client.alive and time.monotonic() < deadline:
            self.status(core, pid)
            time.sleep(0.02)
        assert client.alive

    def next_submit(self) -> dict:
        frames = self.pull.recv_multipart()
        while frames[0] != wire.SUBMIT:  # heartbeats
            frames = self.pull.recv_multipart()
        return wire.header(frames)

    def close(self) -> None:
        self.pull.close(linger=0)
        self.pub.close(linger=0)
        self.context.term()


@pytest.fixture
def core_end(tmp_path):
    end = CoreEnd(tmp_path)
    client = CoreClient(end.requests, end.replies, name="frontend-0-1")
    yield end, client
    client.stop()
    end.close()


def test_a_frontend_fails_what_waits_on_a_core_that_was_restarted(core_end):
    end, client = core_end
    end.serving(client, "core-a", os.getpid())
    ticket = client.submit("score", Ticket(one_input(), time.perf_counter() + 60))
    assert end.next_submit()["core"] == "core-a"
    end.status("core-b", os.getpid())  # a new core speaks, well within the silence
    assert ticket.wait(wire.SILENCE / 2)
    assert isinstance(ticket.error, errors.NotReadyError)


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs Linux pidfds")
def test_a_frontend_sees_its_core_process_end_at_once(core_end):
    end, client = core_end
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        end.serving(client, "core-a", process.pid)
        ticket = client.submit("score", Ticket(one_input(), time.perf_counter() + 60))
        end.next_submit()
        end.status("core-a", process.pid)  # its last word, read after its end
        process.kill()
        assert ticket.wait(wire.SILENCE / 2), "the frontend waited for the core's silence"
        assert isinstance(ticket.error, errors.NotReadyError)
        assert not client.alive
    finally:
        process.kill()
        process.wait()
