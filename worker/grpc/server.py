"""The gRPC server (grpc.aio, on an event loop of its own thread): the Reranker servicer, health,
reflection and interceptors, bound and started.

Health and reflection are plain servicers; grpc.aio runs them on its migration thread pool.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from crossrank.protos import SERVICE_NAME, pb_grpc
from crossrank.worker.drain import Drain
from crossrank.worker.engine import Engine
from crossrank.worker.grpc.interceptors import BearerTokenInterceptor, ErrorInterceptor
from crossrank.worker.grpc.reflection import enable_server_reflection
from crossrank.worker.grpc.servicer import RerankerServicer
from crossrank.worker.settings import WorkerSettings
from crossrank.worker.thread_names import NamedThread

log = logging.getLogger(__name__)


def set_health(servicer: health.HealthServicer, status: int) -> None:
    for name in ("", SERVICE_NAME):
        servicer.set(name, status)


def _credentials(settings: WorkerSettings) -> grpc.ServerCredentials | None:
    if not settings.tls_cert:
        return None
    with open(settings.tls_cert, "rb") as cert, open(settings.tls_key, "rb") as key:
        return grpc.ssl_server_credentials([(key.read(), cert.read())])


class GrpcServer:
    """A started grpc.aio server and the thread whose event loop runs it."""

    def __init__(self, engine: Engine, settings: WorkerSettings, drain: Drain):
        self.settings = settings
        self.health = health.HealthServicer(experimental_non_blocking=True)
        self._pool = ThreadPoolExecutor(max_workers=settings.grpc_threads, thread_name_prefix="grpc")
        self._loop = asyncio.new_event_loop()
        self._thread = NamedThread(target=self._loop.run_forever, name="grpc-aio", daemon=True)
        self._thread.start()
        try:
            self._server, self.port = self._run(self._start(engine, drain))
        except BaseException:
            self._close()
            raise

    def _run(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    async def _start(self, engine: Engine, drain: Drain) -> tuple[grpc.aio.Server, int]:
        settings = self.settings
        interceptors: list[grpc.aio.ServerInterceptor] = [ErrorInterceptor(engine.metrics, drain)]
        if settings.auth_token:
            interceptors.insert(0, BearerTokenInterceptor(settings.auth_token, engine.metrics))
        size = settings.max_message_bytes
        server = grpc.aio.server(
            migration_thread_pool=self._pool,
            interceptors=interceptors,
            options=[("grpc.max_receive_message_length", size), ("grpc.max_send_message_length", size),
                     # Frontends share the port and the kernel spreads the connections among them; else a port
                     # in use is an error (gRPC's default, SO_REUSEPORT, would share it with whoever holds it).
                     ("grpc.so_reuseport", 1 if settings.frontend_count else 0)],
        )
        pb_grpc.add_RerankerServicer_to_server(RerankerServicer(engine, drain), server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        set_health(self.health, health_pb2.HealthCheckResponse.NOT_SERVING)
        enable_server_reflection((SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name),
                                 server)
        address = f"{settings.host}:{settings.port}"
        credentials = _credentials(settings)
        try:
            port = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
        except RuntimeError:  # gRPC's says only "Failed to bind"
            port = 0
        if port == 0:
            raise RuntimeError(f"could not bind {address}: the port is in use, or not this host's; pick another "
                               "with --port (0: any free one)")
        await server.start()
        log.info("listening on %s:%d (%s), loading %s", settings.host, port, "tls" if credentials else "plaintext",
                 settings.model)
        return server, port

    def stop(self, grace: float | None) -> threading.Event:
        """Refuse new calls; calls in flight get `grace` seconds, then are cancelled. The event is set when done."""
        stopped = threading.Event()
        future = asyncio.run_coroutine_threadsafe(self._server.stop(grace), self._loop)
        future.add_done_callback(lambda _: (self._close(), stopped.set()))
        return stopped

    def _close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._pool.shutdown(wait=False, cancel_futures=True)


def start_grpc_server(engine: Engine, settings: WorkerSettings, drain: Drain
                      ) -> tuple[GrpcServer, int, health.HealthServicer]:
    """Bind and start; health says NOT_SERVING until the caller sets it. Returns (server, port, health)."""
    server = GrpcServer(engine, settings, drain)
    return server, server.port, server.health
