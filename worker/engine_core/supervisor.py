"""`crossrank serve --frontends N`: one engine-core process and N frontends, started and watched from here.

    frontends (N processes)            engine core (1 process)
    gRPC + HTTP on the same ports      the device, the batchers, the models
    decode, validate, tokenize,  --->  schedule, collate, forward, post
    admit, rank, reply           <---  scores, and the queue's state every few ms
                  (ZeroMQ over unix sockets in a private folder)

Like vLLM's API servers and engine core: the host work of a request (protobuf, tokenizing,
ranking) runs in N interpreters in parallel, and the one that owns the device does nothing else.

This process only supervises. A frontend that dies is started again; only the calls it held
fail (UNAVAILABLE), and clients retry them on the others; the core is told at once, and drops
the dead frontend's queued work. A core that dies is started again
too, and initialises the device afresh; meanwhile the frontends say NOT_SERVING. A core that
keeps dying (`MAX_CORE_DEATHS` within `DEATH_WINDOW` seconds) ends `serve` with an error, so
that compose or Kubernetes take over.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections import deque
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import zmq

from crossrank.worker.engine_core import metrics, wire
from crossrank.worker.engine_core.processes import addresses, link_name, ready_file, run_core, run_frontend
from crossrank.worker.settings import WorkerSettings
from crossrank.worker.thread_names import NamedThread

log = logging.getLogger(__name__)

MAX_CORE_DEATHS = 3
DEATH_WINDOW = 60.0


def _held_port(host: str, port: int) -> socket.socket:
    """A port bound, not listening, with SO_REUSEPORT: the frontends bind it beside this socket, and
    nothing else takes it meanwhile. Port 0 picks a free one."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


class Supervisor:
    def __init__(self, settings: WorkerSettings):
        self._spawn = multiprocessing.get_context("spawn")
        self._folder = Path(tempfile.mkdtemp(prefix="crossrank-core-"))
        self._ports = [_held_port(settings.host, settings.port)]
        if settings.http_port:
            self._ports.append(_held_port(settings.host, max(settings.http_port, 0)))
        self.port = self._ports[0].getsockname()[1]
        self.http_port = self._ports[1].getsockname()[1] if settings.http_port else 0
        # The frontends serve on the chosen ports; this process serves the metrics of all (`metrics.py`).
        self.settings = dataclasses.replace(settings, port=self.port, http_port=self.http_port)
        self._core_ready = ready_file(self._folder, "core")
        self._frontend_ready = [ready_file(self._folder, f"frontend-{i}") for i in range(settings.frontend_count)]
        self._core: BaseProcess | None = None
        self._frontends: list[BaseProcess | None] = [None] * settings.frontend_count
        self._core_deaths: deque[float] = deque()
        self.failure: str | None = None
        self._zmq = zmq.Context()
        self._to_core = self._zmq.socket(zmq.PUSH)  # to say a frontend died; kept for the cores that follow
        self._to_core.setsockopt(zmq.SNDHWM, 0)
        self._to_core.connect(addresses(self._folder)[0])

    @property
    def ready(self) -> bool:
        return self._core_ready.exists() and all(path.exists() for path in self._frontend_ready)

    def start(self) -> Supervisor:
        if self.settings.metrics_port:
            metrics.serve_public(self.settings.metrics_port, self._folder)
        self._start_core()
        for index in range(len(self._frontends)):
            self._start_frontend(index)
        return self

    def _start_core(self) -> None:
        self._core_ready.unlink(missing_ok=True)
        metrics.forget(self._folder, "core")
        self._core = self._start(run_core, "core", self.settings, self._folder)

    def _start_frontend(self, index: int) -> None:
        metrics.forget(self._folder, f"frontend-{index}")
        self._frontends[index] = self._start(run_frontend, f"frontend-{index}", self.settings, index, self._folder)

    def _start(self, target: Any, name: str, *args: Any) -> BaseProcess:
        process = self._spawn.Process(target=target, name=f"crossrank-{name}", args=args, daemon=False)
        process.start()
        log.info("started %s (pid %d)", name, process.pid)
        return process

    def watch(self, stop: threading.Event) -> None:
        """Restart whatever dies until `stop` is set or the core keeps dying (then `failure` says why)."""
        while not stop.wait(0.1):
            core = self._core
            if core is not None and not core.is_alive():
                if core.exitcode == 3 and not self._core_ready.exists():  # it could not load: no retry helps
                    self.failure = "the engine core could not load the model; see the log above"
                    return
                now = time.monotonic()
                self._core_deaths.append(now)
                while self._core_deaths and now - self._core_deaths[0] > DEATH_WINDOW:
                    self._core_deaths.popleft()
                if len(self._core_deaths) >= MAX_CORE_DEATHS:
                    self.failure = (f"the engine core died {len(self._core_deaths)} times within "
                                    f"{DEATH_WINDOW:.0f}s (last exit code {core.exitcode}); giving up")
                    return
                log.error("the engine core died (exit code %s); starting it again", core.exitcode)
                self._start_core()
            for index, frontend in enumerate(self._frontends):
                if frontend is not None and not frontend.is_alive():
                    if frontend.exitcode == 3 and not self._frontend_ready[index].exists():
                        self.failure = f"frontend-{index} could not start; see the log above"
                        return
                    log.error("frontend-%d died (exit code %s); starting it again", index, frontend.exitcode)
                    # The core drops its work now, not after its silence.
                    self._to_core.send_multipart(wire.pack(wire.GONE, {"frontend": link_name(index, frontend.pid)}))
                    self._start_frontend(index)

    def stop(self, grace: float) -> None:
        """SIGTERM the frontends (they drain within `grace`), then the core; SIGKILL what is left."""
        frontends = [p for p in self._frontends if p is not None]
        self._terminate(frontends, grace + 2.0)
        self._terminate([self._core] if self._core is not None else [], 5.0)
        for sock in self._ports:
            sock.close()
        self._to_core.close(linger=0)
        self._zmq.term()
        shutil.rmtree(self._folder, ignore_errors=True)

    @staticmethod
    def _terminate(processes: list[BaseProcess], grace: float) -> None:
        for process in processes:
            if process.is_alive():
                process.terminate()
        end = time.monotonic() + grace
        for process in processes:
            process.join(max(0.0, end - time.monotonic()))
            if process.is_alive():
                log.warning("%s did not stop in time; killing it", process.name)
                process.kill()
                process.join()


def serve_split(settings: WorkerSettings, echo: Any) -> int:
    """Run the core and the frontends until SIGINT/SIGTERM; the exit status for `serve`."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    supervisor = Supervisor(settings).start()
    log.info("engine core and %d frontends starting on port %d", settings.frontend_count, supervisor.port)
    watcher = NamedThread(target=supervisor.watch, args=(stop,), name="supervisor", daemon=True)
    watcher.start()
    while not stop.is_set() and watcher.is_alive() and not supervisor.ready:
        stop.wait(0.1)
    if supervisor.ready and not stop.is_set():
        http = f", http on port {supervisor.http_port}" if supervisor.http_port else ""
        echo(f"crossrank worker ready on port {supervisor.port}{http} ({settings.frontend_count} frontends)")
    while not stop.is_set() and watcher.is_alive():
        stop.wait(0.2)
    log.info("stopping (grace %.1fs)", settings.grace_seconds)
    supervisor.stop(settings.grace_seconds)
    if supervisor.failure:
        log.error("%s", supervisor.failure)
        return 1
    return 0
