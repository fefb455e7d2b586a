"""The worker: one engine behind the gRPC server and, when asked for, the HTTP gateway.

    server = create_server(settings)   # binds (port 0 picks a free one) and starts loading
    server.wait_ready()                # health turns SERVING after warm-up
    server.stop()
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from grpc_health.v1 import health, health_pb2

from crossrank.protos import pb
from crossrank.worker.drain import Drain
from crossrank.worker.engine import Engine
from crossrank.worker.errors import ModelRefusedError
from crossrank.worker.grpc.server import GrpcServer, set_health, start_grpc_server
from crossrank.worker.metrics import WorkerMetrics
from crossrank.worker.model_source import ModelSourceError
from crossrank.worker.settings import WorkerSettings
from crossrank.worker.thread_names import NamedThread

if TYPE_CHECKING:
    from crossrank.worker.http.gateway import HttpGateway

log = logging.getLogger(__name__)


@dataclass
class WorkerServer:
    server: GrpcServer
    port: int
    engine: Engine
    health: health.HealthServicer
    settings: WorkerSettings
    drain: Drain
    http: HttpGateway | None = None  # the HTTP gateway, when settings.http_port is not 0
    _loader: threading.Thread = field(repr=False, default=None)  # type: ignore[assignment]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def http_port(self) -> int:
        """The HTTP gateway's bound port; 0 when it is off."""
        return self.http.port if self.http else 0

    def load(self) -> None:
        """Start loading the model on a background thread; health turns SERVING after warm-up."""
        if self._loader is None:
            self._loader = NamedThread(target=self._load, name="model-loader", daemon=True)
            self._loader.start()

    def _load(self) -> None:
        try:
            if not self.engine.loaded:  # a frontend may load its engine before it binds
                self.engine.load()
        except BaseException as exc:  # reported by wait_ready / serve; calls keep getting UNAVAILABLE
            self.engine.load_error = exc
            # A bad model setting is one line, said by whoever waits (serve); its traceback only at DEBUG.
            quiet = isinstance(exc, (ModelSourceError, ModelRefusedError))
            log.log(logging.DEBUG if quiet else logging.ERROR, "loading %s failed", self.settings.model, exc_info=True)
            return
        set_health(self.health, health_pb2.HealthCheckResponse.SERVING)

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until the model is warm (True) or loading failed or timed out (False)."""
        self.load()
        self._loader.join(timeout)
        return self.engine.ready

    def stop(self, grace: float | None = None) -> None:
        """Drain: refuse new work, give admitted requests `grace` seconds, then fail what is left.

        The engine stops a little before the transports' own grace ends, so a request still
        queued then is answered UNAVAILABLE (HTTP 503), which clients retry elsewhere, rather
        than cut off. Returns within about `grace` seconds: a handler thread still inside a
        tokenizer call is not waited for (`crossrank serve` exits without it).
        """
        grace = self.settings.grace_seconds if grace is None else grace
        end = time.monotonic() + grace
        self.drain.begin()
        set_health(self.health, health_pb2.HealthCheckResponse.NOT_SERVING)
        stopped = self.server.stop(grace)
        if self.http is not None:
            self.http.begin_stop()
        engine_stop = end - min(1.0, grace / 5)
        self._wait(stopped, engine_stop)
        self.engine.stop()
        self._wait(stopped, end + 1.0)

    def _wait(self, grpc_stopped: threading.Event, until: float) -> None:
        grpc_stopped.wait(max(0.0, until - time.monotonic()))
        if self.http is not None:
            self.http.join(max(0.0, until - time.monotonic()))


def _http_gateway(engine: Engine, settings: WorkerSettings, drain: Drain) -> HttpGateway | None:
    if not settings.http_port:
        return None
    from crossrank.worker.http.gateway import HttpGateway  # FastAPI and uvicorn, only when asked for

    return HttpGateway(engine, settings, drain).start()


def create_server(settings: WorkerSettings, metrics: WorkerMetrics | None = None, *, load: bool = True,
                  engine: Engine | None = None) -> WorkerServer:
    """Bind and start serving (UNAVAILABLE until ready); with `load`, start loading the model at once.

    `engine` is one made elsewhere (a frontend's, linked to the engine core); else one is made here.
    """
    settings.validate()
    engine = engine or Engine(settings, metrics)
    drain = Drain()
    server, port, health_servicer = start_grpc_server(engine, settings, drain)
    try:
        http = _http_gateway(engine, settings, drain)
    except Exception:  # e.g. the http port is taken: leave nothing half-started behind
        server.stop(0)
        raise
    worker = WorkerServer(server, port, engine, health_servicer, settings, drain, http=http)
    if load:
        worker.load()
    return worker


__all__ = ["WorkerServer", "create_server", "pb"]
