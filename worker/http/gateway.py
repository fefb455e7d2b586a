"""Run the HTTP gateway beside the gRPC server: uvicorn on a thread of its own, one event loop.

The socket is bound here, before uvicorn starts, so that port 0 picks a free port the
caller can read at once, and a port already in use fails `create_server` instead of a
background thread.
"""

from __future__ import annotations

import logging
import socket
import time

import uvicorn

from crossrank.worker.drain import Drain
from crossrank.worker.engine import Engine
from crossrank.worker.http.app import create_app
from crossrank.worker.settings import WorkerSettings
from crossrank.worker.thread_names import NamedThread

log = logging.getLogger(__name__)


def _bind(host: str, port: int, shared: bool = False) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:  # frontends serve the same port; the kernel spreads the connections among them
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise RuntimeError(f"could not bind the http gateway to {host}:{port}: {exc}") from exc
    return sock


class HttpGateway:
    """The gateway's server; `port` is the bound one. Serves TLS with the gRPC server's certificate."""

    def __init__(self, engine: Engine, settings: WorkerSettings, drain: Drain):
        self._socket = _bind(settings.host, max(settings.http_port, 0), shared=settings.frontend_count > 0)
        self.port: int = self._socket.getsockname()[1]
        self.tls = bool(settings.tls_cert)
        config = uvicorn.Config(
            create_app(engine, settings, drain),
            log_config=None,  # keep the process's logging set-up (JSON lines) as it is
            access_log=False,  # the app logs each request with its request id instead
            lifespan="off",
            ssl_certfile=settings.tls_cert or None,
            ssl_keyfile=settings.tls_key or None,
            timeout_graceful_shutdown=settings.grace_seconds,  # type: ignore[arg-type] (a float works)
        )
        self._server = uvicorn.Server(config)
        self._thread = NamedThread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                   name="http-gateway", daemon=True)

    def start(self, timeout: float = 30) -> HttpGateway:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._socket.close()
                raise RuntimeError(f"http gateway did not start on port {self.port}; see the log above")
            time.sleep(0.01)
        log.info("http gateway listening on port %d (%s)", self.port, "https" if self.tls else "http")
        return self

    def begin_stop(self) -> None:
        """Refuse new connections; requests in flight have the grace period to finish."""
        self._server.should_exit = True

    def join(self, timeout: float) -> bool:
        """Wait for the requests in flight; True once the server has stopped."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            return False
        self._socket.close()
        return True
