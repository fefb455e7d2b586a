"""The engine core's end of the link: frontends' tokenized requests into this process's batchers, and
their scores, the queue's state and the core's health back out.

The core is an ordinary `Engine` that loads, pins and warms the models, and then only schedules
and runs them: its tokenizer pool stays idle, since requests arrive as token arrays. One thread
receives (requests and cancels); replies go out from whichever engine thread finishes a request,
under a lock, on the one PUB socket. The queue's state goes out every `STATUS_EVERY` seconds while
requests arrive, and at least every `HEARTBEAT` seconds: frontends admit from it, and take its
silence as the core's death. A frontend has died when the supervisor says so (`gone`, at once)
or when it has said nothing for `SILENCE` seconds: its queued work is dropped, since its callers
have gone with it.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from typing import Any

import numpy as np
import zmq

from crossrank.worker.engine.batcher import Ticket
from crossrank.worker.engine_core import wire
from crossrank.worker.errors import CancelledError, NotReadyError
from crossrank.worker.thread_names import NamedThread

log = logging.getLogger(__name__)

STATUS_EVERY = 0.005


def status_interval(changed: bool) -> float:
    """Seconds from one status to the next: soon after a change, else a heartbeat's."""
    return STATUS_EVERY if changed else wire.HEARTBEAT


class CoreServer:
    def __init__(self, engine: Any, requests: str, replies: str):
        self.engine = engine
        self._context = zmq.Context()
        self._pull = self._context.socket(zmq.PULL)
        self._pull.setsockopt(zmq.RCVHWM, 0)
        self._pull.bind(requests)
        self._pub = self._context.socket(zmq.PUB)
        self._pub.setsockopt(zmq.SNDHWM, 0)  # a reply is never dropped for a slow frontend
        self._pub.bind(replies)
        self._pub_lock = threading.Lock()
        self._tickets: dict[tuple[str, int], Ticket] = {}
        self._received: dict[str, int] = {}  # each frontend's last request seen, so it knows what is counted
        self._heard: dict[str, float] = {}  # when (its time.monotonic()) each frontend last said anything
        self._lost: set[str] = set()  # frontends dropped for silence: said once, not at every late heartbeat
        self._dead: set[str] = set()  # frontends the supervisor saw end (a name holds a pid: never reused soon)
        # Which core this is, in every status: frontends name it in their submits (see wire.py).
        self.boot = f"{os.getpid()}-{time.monotonic_ns()}"
        self._info: dict[str, Any] | None = None
        self._stopping = threading.Event()
        self._thread = NamedThread(target=self._loop, name="core-link", daemon=True)

    def start(self) -> CoreServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(5)
        with self._pub_lock:
            self._pub.close(linger=100)
        self._pull.close(linger=0)
        self._context.term()

    # -- receiving ---------------------------------------------------------------------------

    def _loop(self) -> None:
        last_status = 0.0
        changed = True
        while not self._stopping.is_set():
            # Asleep until a message comes or a status is due: an idle core wakes once a HEARTBEAT, not
            # once every STATUS_EVERY (200 wake-ups a second cost 3% of a core doing nothing).
            due = last_status + status_interval(changed)
            if self._pull.poll(max(0, math.ceil((due - time.monotonic()) * 1000))):
                while True:
                    try:
                        frames = self._pull.recv_multipart(zmq.NOBLOCK, copy=False)
                    except zmq.Again:
                        break
                    changed = self._handle(frames) or changed
            now = time.monotonic()
            if now - last_status >= status_interval(changed):
                self._publish_status()
                last_status, changed = now, False
                self._forget_silent(now)

    def _handle(self, frames: list[Any]) -> bool:
        """Act on one message; whether it changed what the status says (an "alive" changes nothing)."""
        kind, head = frames[0].bytes, wire.header(frames)
        frontend = head["frontend"]
        if kind == wire.GONE:  # from the supervisor, which saw the process end
            self._dead.add(frontend)
            self._forget({frontend}, "died")
            return True
        if frontend in self._dead:  # what it sent before it died, read late: no one waits for it
            return False
        if head["at"] > self._heard.get(frontend, 0.0):
            self._heard[frontend] = head["at"]
            if time.monotonic() - head["at"] < wire.SILENCE:
                self._lost.discard(frontend)
        if kind == wire.ALIVE:
            return False
        key = (frontend, head["id"])
        if kind == wire.CANCEL:
            ticket = self._tickets.get(key)
            if ticket is not None:
                ticket.cancel()
            return True
        self._received[frontend] = head["seq"]
        timeout = head["timeout"]
        ticket = Ticket(wire.tokens_of(head, frames), None if timeout is None else time.perf_counter() + timeout,
                        head["priority"])
        self._tickets[key] = ticket
        ticket.add_done_callback(lambda t: self._reply(key, t))
        if head["core"] != self.boot:  # sent to the core before this one: its frontend has failed it already
            ticket.fail(NotReadyError("the engine core was restarted; retry"))
            return True
        try:
            self.engine.queue(head["kind"]).submit(ticket)
        except Exception as exc:  # loading, stopping, no such model: the request's answer, never the core's end
            ticket.fail(exc)
        return True

    def _forget_silent(self, now: float) -> None:
        """Drop the work of frontends that have died (silent for `SILENCE` s): no one waits for it."""
        silent = {name for name, heard in self._heard.items() if now - heard > wire.SILENCE}
        if silent:
            self._forget(silent, "went silent")

    def _forget(self, frontends: set[str], why: str) -> None:
        for name in frontends:
            self._heard.pop(name, None)
            self._received.pop(name, None)
        dropped = [t for (name, _), t in list(self._tickets.items()) if name in frontends]
        if dropped or not frontends <= self._lost:
            log.warning("frontend(s) %s %s; dropping their %d requests", ", ".join(sorted(frontends)), why,
                        len(dropped))
        self._lost |= frontends
        for ticket in dropped:  # answered, in case a frontend was only slow: its callers retry
            ticket.fail(NotReadyError("the engine core lost this frontend; retry"))

    # -- sending -----------------------------------------------------------------------------

    def _reply(self, key: tuple[str, int], ticket: Ticket) -> None:
        self._tickets.pop(key, None)
        frontend, request_id = key
        if isinstance(ticket.error, CancelledError):
            return  # the frontend cancelled it and waits for nothing
        if ticket.error is not None:
            frames = wire.pack(wire.FAILED, {"id": request_id, "error": type(ticket.error).__name__,
                                             "message": str(ticket.error)})
        else:
            outputs = np.asarray(ticket.outputs, dtype=np.float32)
            finished = ticket.finished or time.perf_counter()
            started = ticket.started or finished
            frames = wire.pack(wire.DONE, {"id": request_id, "shape": outputs.shape,
                                           "started_ago": time.perf_counter() - started,
                                           "inference_s": finished - started}, outputs)
        self._send([frontend.encode(), *frames])

    def _publish_status(self) -> None:
        engine = self.engine
        error = engine.load_error
        if self._info is None and engine.ready:
            self._info = engine.core_info()  # fixed once the models are loaded
        status = {"core": self.boot, "pid": os.getpid(), "ready": engine.ready,
                  "load_error": None if error is None else f"{error}", "info": self._info,
                  "queues": {kind: wire.queue_state_json(queue.state()) for kind, queue in engine.queues().items()},
                  "received": dict(self._received)}
        self._send([wire.STATUS, *wire.pack(wire.STATUS, status)])

    def _send(self, frames: list[Any]) -> None:
        with self._pub_lock:
            if not self._pub.closed:
                self._pub.send_multipart(frames)
