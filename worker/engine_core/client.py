"""A frontend's end of the link: its tokenized requests go to the engine core, and the core's replies
fill their tickets.

To the frontend's `Engine` each of the core's models is a queue with a batcher's face
(`CoreQueue`: submit, the pending counts, the estimated wait), so admission, tokenizing, ranking
and the transports run the same code in a frontend as in one process. The counts are the core's
last status plus what this frontend has sent since that status counted, so a burst is seen at
once here; other frontends' bursts are seen within one status (a few ms).

The core is gone when its process ends (watched through a Linux pidfd, so at once), when its
status stops (`wire.SILENCE`), or when a status comes from a new core: every request waiting on it
fails UNAVAILABLE at once (clients retry), and the engine reports not ready until a core says it is
ready.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import threading
import time
from collections import Counter, deque
from typing import Any

import numpy as np
import zmq

from crossrank.worker import errors
from crossrank.worker.engine.batcher import QueueReads, QueueState, Ticket
from crossrank.worker.engine_core import wire
from crossrank.worker.thread_names import NamedThread

log = logging.getLogger(__name__)

_ERRORS = {name: getattr(errors, name) for name in ("OverloadedError", "DeadlineError", "NotReadyError",
                                                     "NotServedError", "InvalidInputError", "CancelledError")}


def _error(name: str, message: str) -> BaseException:
    return _ERRORS.get(name, RuntimeError)(message)


class _Null:
    def dropped(self, pairs: int) -> None:
        pass


class CoreQueue(QueueReads):
    """One of the core's models, as a frontend's engine sees it: the part of `Batcher` it uses."""

    observer = _Null()  # the core counts its own drops

    def __init__(self, client: CoreClient, kind: str):
        self.client = client
        self.kind = kind

    def submit(self, ticket: Ticket) -> Ticket:
        return self.client.submit(self.kind, ticket)

    def state(self) -> QueueState:
        return self.client.state(self.kind)

    def batches_waiting(self, stage: str) -> int:
        return self.state().waiting.get(stage, 0)

    def stop(self) -> None:
        self.client.fail_all(self.kind, errors.OverloadedError("worker stopped before this request was scored"))


def _process_end(pid: int) -> int | None:
    """A file descriptor that turns readable when process `pid` ends (a pidfd); None where there are none
    (not Linux, a kernel before 5.3), and then only the core's silence tells."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


class CoreClient:
    def __init__(self, requests: str, replies: str, name: str):
        self.name = name
        self._context = zmq.Context()
        self._push = self._context.socket(zmq.PUSH)
        self._push.setsockopt(zmq.SNDHWM, 0)
        self._push.connect(requests)
        self._push_lock = threading.Lock()  # tokenizer threads submit, the event loop cancels
        self._sub = self._context.socket(zmq.SUB)
        self._sub.setsockopt(zmq.RCVHWM, 0)
        for topic in (name.encode(), wire.STATUS):
            self._sub.setsockopt(zmq.SUBSCRIBE, topic)
        self._sub.connect(replies)
        self._ids = itertools.count()
        self._seq = 0
        self._lock = threading.Lock()
        self._tickets: dict[int, tuple[str, Ticket]] = {}
        self._sent: deque[tuple[int, str, int, int]] = deque()  # (seq, kind, priority, pairs) not yet in a status
        self._states: dict[str, QueueState] = {}
        self._status: dict[str, Any] = {}
        self._heard = 0.0  # when (the core's time.monotonic()) the core sent its last status
        self._core: str | None = None  # which core sent it (`CoreServer.boot`); submits are meant for that one
        self._dead_core: str | None = None  # a core seen to end: its statuses still queued here are stale
        self._core_end: int | None = None  # the core's pidfd, watched beside the SUB socket
        self._poller = zmq.Poller()
        self._poller.register(self._sub, zmq.POLLIN)
        self._status_event = threading.Event()
        self._stopping = threading.Event()
        self._thread = NamedThread(target=self._receive_loop, name="core-client", daemon=True)
        self._thread.start()

    # -- the core's state ------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self._heard > 0 and time.monotonic() - self._heard < wire.SILENCE and bool(self._status.get("ready"))

    def wait_ready(self, timeout: float | None = None) -> dict[str, Any]:
        """The core's info once its models are warm; raises what stopped it from loading."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self._status
            if status.get("ready"):
                return status["info"]
            if status.get("load_error"):
                raise RuntimeError(status["load_error"])
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError("the engine core did not become ready in time")
            self._status_event.clear()
            self._status_event.wait(0.5 if left is None else min(0.5, left))

    def state(self, kind: str) -> QueueState:
        with self._lock:
            state = self._states.get(kind) or QueueState()
            mine: Counter[int] = Counter()
            for _, sent_kind, priority, pairs in self._sent:
                if sent_kind == kind:
                    mine[priority] += pairs
        if not mine:
            return state
        pending = Counter(state.pending)
        pending.update(mine)
        return QueueState(dict(pending), state.inflight, state.seconds_per_pair, state.waiting)

    def queue(self, kind: str) -> CoreQueue:
        return CoreQueue(self, kind)

    # -- requests --------------------------------------------------------------------------------

    def submit(self, kind: str, ticket: Ticket) -> Ticket:
        if ticket.done:
            return ticket
        assert ticket.tokens is not None
        if len(ticket.tokens) == 0:
            ticket.complete(np.zeros(0, dtype=np.float32))
            return ticket
        if not self.alive:
            raise errors.NotReadyError("the engine core is restarting; retry shortly")
        request_id = next(self._ids)
        timeout = None if ticket.deadline is None else max(0.0, ticket.deadline - time.perf_counter())
        with self._lock:
            self._tickets[request_id] = (kind, ticket)
        with self._push_lock:
            self._seq += 1
            with self._lock:
                self._sent.append((self._seq, kind, ticket.priority, len(ticket.tokens)))
            head = {"id": request_id, "kind": kind, "priority": ticket.priority, "timeout": timeout,
                    "frontend": self.name, "seq": self._seq, "core": self._core}
            self._push.send_multipart(wire.submit_frames(head, ticket.tokens))
        ticket.add_done_callback(lambda t: self._ended(request_id, t))
        return ticket

    def _ended(self, request_id: int, ticket: Ticket) -> None:
        """A ticket ended here first (cancelled, past its deadline): the core drops its work too."""
        with self._lock:
            if self._tickets.pop(request_id, None) is None:
                return  # the core's reply ended it
        with self._push_lock:
            if not self._push.closed:
                self._push.send_multipart(wire.pack(wire.CANCEL, {"id": request_id, "frontend": self.name}))

    def fail_all(self, kind: str | None, error: BaseException) -> None:
        with self._lock:
            ended = [(i, t) for i, (k, t) in self._tickets.items() if kind is None or k == kind]
            for i, _ in ended:
                del self._tickets[i]
        for _, ticket in ended:
            ticket.fail(error)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(2)
        with self._push_lock:
            self._push.close(linger=0)
        self._sub.close(linger=0)
        self._context.term()

    # -- the core's messages ---------------------------------------------------------------------

    def _receive_loop(self) -> None:
        was_alive = False
        said = 0.0
        while not self._stopping.is_set():
            if time.monotonic() - said >= wire.HEARTBEAT:  # so the core knows this frontend lives
                with self._push_lock:
                    self._push.send_multipart(wire.pack(wire.ALIVE, {"frontend": self.name}))
                said = time.monotonic()
            events = dict(self._poller.poll(int(wire.HEARTBEAT * 1000)))
            # The core's end first: a status read below may start watching a new core, whose pidfd can
            # reuse the closed one's number, and this round's events are about the old one.
            if self._core_end is not None and events.get(self._core_end):
                self._dead_core, self._heard = self._core, 0.0
                self._watch_core(None)
                if was_alive:
                    self._lose_core("died")
                was_alive = False
            if events.get(self._sub):
                while True:
                    try:
                        frames = self._sub.recv_multipart(zmq.NOBLOCK, copy=False)
                    except zmq.Again:
                        break
                    self._handle(frames[0].bytes, frames[1:])
            alive = self.alive
            if was_alive and not alive:
                self._lose_core("went silent")
            was_alive = alive
        self._watch_core(None)

    def _watch_core(self, pid: int | None) -> None:
        """Watch the end of the core process `pid` (None: of none)."""
        if self._core_end is not None:
            self._poller.unregister(self._core_end)
            with contextlib.suppress(OSError):
                os.close(self._core_end)
        self._core_end = None if pid is None else _process_end(pid)
        if self._core_end is not None:
            self._poller.register(self._core_end, zmq.POLLIN)

    def _lose_core(self, why: str) -> None:
        if self._tickets or why == "went silent":
            log.error("the engine core %s; failing the %d requests waiting on it", why, len(self._tickets))
        with self._lock:
            self._sent.clear()  # a new core counts afresh
        self.fail_all(None, errors.NotReadyError("the engine core stopped; retry shortly"))

    def _handle(self, topic: bytes, frames: list[Any]) -> None:
        kind, head = frames[0].bytes, wire.header(frames)
        if topic == wire.STATUS:
            if head["core"] == self._dead_core:
                return  # sent before it ended, read after
            if head["core"] != self._core:
                if self._core is not None:
                    self._lose_core("was restarted")  # the old one's work will never be answered
                self._watch_core(head["pid"])
            with self._lock:
                self._states = {k: wire.queue_state_of(v) for k, v in head["queues"].items()}
                counted = head["received"].get(self.name, 0)
                while self._sent and self._sent[0][0] <= counted:
                    self._sent.popleft()
            self._status = head
            self._core = head["core"]
            self._heard = max(self._heard, head["at"])
            self._status_event.set()
            return
        with self._lock:
            entry = self._tickets.pop(head["id"], None)
        if entry is None:
            return  # ended here already
        ticket = entry[1]
        if kind == wire.DONE:
            now = time.perf_counter()
            ticket.started = now - head["started_ago"]
            ticket.complete(wire.outputs_of(head, frames))
            ticket.finished = ticket.started + head["inference_s"]
        else:
            ticket.fail(_error(head["error"], head["message"]))
